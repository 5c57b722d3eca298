"""Shared fixtures: a throw-away copy of the project in its own git repository, and one real
Prefect server on 127.0.0.1 for the whole test session."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

# Prefect configures its console log handler on first import, bound to whatever sys.stderr is
# then: import it now, not inside a test whose captured stderr is closed afterwards.
from prefect import flow  # noqa: F401

from tests.project_copy import fresh_copy, init_repo
from tests.waits import HANG_S

ROOT = Path(__file__).resolve().parents[1]

# Small enough to train in seconds on 2 cores, large enough to be a real LSTM fit.
TINY_PARAMS = {
    "model": {"units": [8], "dropout": 0.0},
    "training": {"epochs": 4, "ensemble": 1, "patience": 2, "lr_patience": 1, "batch_size": 32},
    # A 4-epoch model is no forecaster: let it publish so the tests reach the publish stage.
    # No change threshold either: two 4-epoch models differ by chance, not by merit.
    "gate": {
        "mase_ratio_below": None,
        "max_worse_series_fraction": None,
        "max_mase": 10.0,
        "min_improvement_over_seasonal_naive": -1.0,
        "max_rel_change": None,
    },
}


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout=HANG_S):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


# The monitor's tables (tasks/monitoring/store.py) share the store file with the forecasts: they
# record what was observed since, not what was published.
MONITOR_TABLES = (
    "monitor_steps",
    "monitor_series",
    "monitor_runs",
    "run_expectations",
    "schema_versions",
)


def published_state(project: Path, rels) -> dict:
    """Each published file's bytes; for the SQLite store, its schema version and SQL dump without
    the monitor's tables (a run that fails may have scored earlier forecasts first)."""
    import sqlite3

    state = {}
    for rel in rels:
        path = project / rel
        if path.suffix != ".sqlite":
            state[rel] = path.read_bytes()
            continue
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            dump = [ln for ln in conn.iterdump() if not any(t in ln for t in MONITOR_TABLES)]
        finally:
            conn.close()
        state[rel] = (version, dump)
    return state


def base_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env["FORECAST_PREFECT"] = "never"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env


def update_params(project: Path, changes: dict) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        if isinstance(values, dict):
            params.setdefault(section, {}).update(values)
        else:
            params[section] = values
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def git_commit(project: Path, message: str) -> None:
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", message], project)


def make_project(dest: Path) -> Path:
    """The project's files, copied into a new git repository with tiny params."""
    fresh_copy(dest)
    update_params(dest, TINY_PARAMS)
    return init_repo(dest)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def reproduced_project(tmp_path_factory) -> Path:
    """A project copy after one full `dvc repro`, committed; copy it, never change it.

    Built once per test run: under pytest-xdist (`./run.sh test` runs two workers) the first
    worker that needs it builds it in the workers' common temp dir, under an flock, and the
    other reuses it (the pattern of pytest-xdist's docs). It needs no Prefect server, so it does
    not matter which worker's server is running."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by every worker of this run
    shared = root / "reproduced-shared"
    dest = shared / "project"
    with open(root / "reproduced-shared.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (shared / "built").exists():
            shutil.rmtree(shared, ignore_errors=True)  # a half-built one (a crashed worker)
            shared.mkdir()
            make_project(dest)
            first = run(["dvc", "repro"], dest, env=base_env())
            (shared / "first_repro.log").write_text(first.stdout)
            git_commit(dest, "first run")
            (shared / "built").touch()
    return dest


@pytest.fixture
def project_after_run(reproduced_project: Path, tmp_path: Path) -> Path:
    """A private copy (git history and DVC cache included) of the reproduced project."""
    dest = tmp_path / "project"
    shutil.copytree(reproduced_project, dest, symlinks=True)
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The port number is picked by binding port 0 and closing, so another process may take it before
# the server binds it: then `prefect server start` exits with "already in use" (its own check, or
# uvicorn's bind error) and the fixture retries on another port.
PORT_IN_USE = ("already in use", "address in use", "errno 98")
SERVER_ATTEMPTS = 5
# Generous: a new server is healthy after about 15 s on an idle machine (shared/README.md), and
# these 2 cores may be busy with other test sessions.
SERVER_START_TIMEOUT_S = HANG_S


def _start_prefect_server(home: Path, port: int) -> subprocess.Popen | None:
    """The server on `port`, healthy; None when the port was taken (the caller retries)."""
    env = base_env(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_STATIC_DIRECTORY=str(home / "ui"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home}/prefect.db",
        # The UI asks the server where its API is; the default (port 4200) is wrong here.
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
    )
    log_path = home / f"server-{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        # Healthy *and* ours: whoever took the port first answers too, so ask the server for its
        # PREFECT_HOME (a process that lost the port exits, handled below).
        try:
            with urllib.request.urlopen(f"{url}/admin/settings", timeout=2) as resp:
                if json.load(resp).get("home") == str(home) and proc.poll() is None:
                    return proc
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            text = log_path.read_text()
            if any(s in text.lower() for s in PORT_IN_USE):
                return None
            raise RuntimeError(f"Prefect server did not start:\n{text}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(
                f"Prefect server not healthy within {SERVER_START_TIMEOUT_S} s:\n"
                f"{log_path.read_text()}"
            )
        time.sleep(0.5)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> str:
    """A real `prefect server start` on 127.0.0.1 for the whole session; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    for _ in range(SERVER_ATTEMPTS):
        port = _free_port()
        proc = _start_prefect_server(home, port)
        if proc is not None:
            break
    else:
        raise RuntimeError(f"Prefect server: every port tried was taken ({SERVER_ATTEMPTS} tries)")
    yield f"http://127.0.0.1:{port}/api"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server (tests/pgserver.py) for the whole session, stopped at its end.
    Missing binaries fail the tests that need it (never a silent skip): `./run.sh test`
    installs them."""
    from tests.pgserver import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """The URL template (password as ${VAR}) of a new empty database for this test."""
    import hashlib

    return pg_server.create_database("t_" + hashlib.md5(request.node.nodeid.encode()).hexdigest())


@pytest.fixture
def prefect_env(prefect_server: str, tmp_path: Path) -> dict:
    """Environment for a subprocess that reports to the session's Prefect server."""
    return _client_env(prefect_server, tmp_path / "prefect-client")


def _client_env(server: str, home: Path) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    return base_env(
        PREFECT_API_URL=server,
        PREFECT_HOME=str(home),
        FORECAST_PREFECT="auto",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )


@pytest.fixture(scope="session")
def versioned_prefect_run(prefect_server: str, tmp_path_factory) -> dict:
    """One versioned pipeline run (`python -m flows.pipeline --version`: all five stages, a git
    tag, a `dvc push` to the remote beside the project) reported to the session's server, shared
    by the Prefect, versioning and similar tests: copy it (`versioned_project`), never change it.
    Returns its directory (project/ and forecast-dvc-remote/), stdout and flow run id."""
    base = tmp_path_factory.mktemp("versioned")
    project = make_project(base / "project")
    env = _client_env(prefect_server, tmp_path_factory.mktemp("prefect-client"))
    result = run([sys.executable, "-m", "flows.pipeline", "--version"], project, env=env)
    record = json.loads((project / "logs/pipeline-runs.jsonl").read_text().splitlines()[-1])
    return {"root": base, "stdout": result.stdout, "flow_run_id": record["flow_run_id"]}


@pytest.fixture
def versioned_project(versioned_prefect_run: dict, tmp_path: Path) -> Path:
    """A private copy of the shared versioned run: project (git history, tags and DVC cache
    included) and its DVC remote, side by side as the run left them."""
    dest = tmp_path / "versioned"
    shutil.copytree(versioned_prefect_run["root"], dest, symlinks=True)
    return dest / "project"

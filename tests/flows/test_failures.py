"""Failures are visible (failed state with the reason, an event, a run-log line) and change nothing
published; a source that is briefly unreadable is retried with back-off, bad rows are not."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import published_state, run, update_params
from tests.flows import api
from tests.flows.test_cli import forecast
from tests.waits import HANG_S, stop

pytestmark = pytest.mark.slow

PUBLISHED = ("published/forecasts.sqlite", "published/forecasts.parquet")
RUN_LOG = "logs/pipeline-runs.jsonl"


def published(project: Path) -> dict:
    return published_state(project, PUBLISHED)


def last_logged(project: Path) -> dict:
    return json.loads((project / RUN_LOG).read_text().splitlines()[-1])


def failed_run(project: Path, env: dict, server: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = run(["python", "-m", "flows.pipeline"], project, env=env, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    record = last_logged(project)
    assert record["failed"] is True
    return result, api.flow_run(server, record["flow_run_id"])


def test_failed_gate_and_bad_data_fail_visibly_and_publish_nothing(
    project_after_run: Path, prefect_env: dict, prefect_server: str
):
    project = project_after_run
    before = published(project)

    update_params(project, {"gate": {"max_mase": 0.001}})
    # Run as a user runs it (the `forecast` console script): a refused gate exits 3, stdout empty
    # under --json, the stage summary on stderr.
    result = forecast(["pipeline", "--json"], project, env=prefect_env)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "NOT PUBLISHED" in result.stderr and result.stdout == ""
    assert " evaluate: done" in result.stderr and "  publish: FAILED" in result.stderr
    record = last_logged(project)
    assert record["failed"] is True
    flow_run = api.flow_run(prefect_server, record["flow_run_id"])
    assert flow_run["state_type"] == "FAILED"
    assert "NOT PUBLISHED" in flow_run["state"]["message"]
    assert "NOT PUBLISHED" in last_logged(project)["reason"]
    states = {t["name"]: t["state_type"] for t in api.task_runs(prefect_server, flow_run["id"])}
    assert states["evaluate"] == "COMPLETED" and states["publish"] == "FAILED", states
    metrics = api.artifacts(prefect_server, flow_run["id"])["forecast-metrics"]["data"]
    assert "Decision: NOT PUBLISHED" in metrics
    event = api.wait_event(prefect_server, "forecast.pipeline.failed", flow_run["id"])
    assert "NOT PUBLISHED" in event["payload"]["reason"]
    assert published(project) == before
    # The run report says so first, with this run's data (issue 24.4).
    page = (project / "reports/run.html").read_text()
    assert page.index("NOT PUBLISHED: the gate refused this run&#x27;s model") < page.index("Gate")
    assert "This run&#x27;s data: data/raw/airpassengers.csv" in page
    assert "Decision: NOT PUBLISHED" in page and "<td>published_mase_max</td>" in page
    assert "outcome-gate_refused" in page and "Still published: an earlier run" in page

    # Bad rows: ingest fails at once (no retry: the data, not the source, is wrong).
    update_params(project, {"gate": {"max_mase": 10.0}})
    raw = project / "data/raw/airpassengers.csv"
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join([*lines, lines[-1]]) + "\n")
    result, flow_run = failed_run(project, prefect_env, prefect_server)
    assert flow_run["state_type"] == "FAILED"
    assert "duplicate" in flow_run["state"]["message"].lower()
    [ingest] = api.task_runs(prefect_server, flow_run["id"])
    assert ingest["name"] == "ingest" and ingest["run_count"] == 1
    assert published(project) == before
    page = (project / "reports/run.html").read_text()
    assert "Ingest refused this run&#x27;s data" in page and "duplicate" in page.lower()
    assert "Decision: PASSED" not in page  # the earlier run's gate is marked as such


def test_unreadable_source_is_retried_with_backoff(
    project_after_run: Path, prefect_env: dict, prefect_server: str, tmp_path: Path
):
    project = project_after_run
    update_params(
        project,
        {
            "data": {"path": "data/raw/late.csv"},
            "orchestration": {"source_retries": 3, "source_retry_delay_s": 1.0},
        },
    )
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.pipeline"],
            cwd=project,
            env=prefect_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + HANG_S  # a flow process starting on 2 busy cores
    # The export lands only after the first attempt failed and a retry was scheduled.
    while "Retry 1/3" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    shutil.copyfile(project / "data/raw/airpassengers.csv", project / "data/raw/late.csv")
    assert proc.wait(timeout=HANG_S) == 0, log.read_text()[-3000:]
    output = log.read_text()
    assert "ingest: ran" in output
    record = last_logged(project)
    assert record["failed"] is False
    [ingest] = [
        t for t in api.task_runs(prefect_server, record["flow_run_id"]) if t["name"] == "ingest"
    ]
    assert ingest["state_type"] == "COMPLETED" and ingest["run_count"] >= 2, ingest


def test_a_killed_run_is_marked_crashed_by_the_runner_and_changes_nothing(
    project_after_run: Path, prefect_env: dict, prefect_server: str, tmp_path: Path
):
    """The flow-run process of a served deployment SIGKILLs itself after train's first epoch
    (tasks/faults.py): the runner marks the run Crashed, the on_crashed hook logs it and emits
    the failure event, the lock on the repository is released with the process, and the
    published files stay byte-identical."""
    from tests.flows.test_deployment import _wait_deployment, never_firing_cron

    project = project_after_run
    before = published(project)
    lock = project / ".dvc/tmp/forecast-pipeline.lock"
    marker = tmp_path / "killed-at"
    env = {
        **prefect_env,
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        # inherited by the flow-run process the runner starts; the serve process never trains
        "FORECAST_KILL_AT": "train.member_0.epoch_end.1",
        "FORECAST_KILL_MARKER": str(marker),
    }
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.deploy", "--cron", never_firing_cron("UTC")], cwd=project,
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deployment = _wait_deployment(prefect_server, proc, log)
        # force: rerun every stage although nothing changed, so there is a train to kill
        run_id = api.post(
            prefect_server,
            f"/deployments/{deployment['id']}/create_flow_run",
            {"parameters": {"force": True}},
        )["id"]
        # Generous: ingest + prepare + one epoch on 2 busy cores; the run crashes by itself.
        [crashed] = api.wait_terminal(prefect_server, [run_id]).values()
        try:
            record = api.wait_event(prefect_server, "forecast.pipeline.failed", run_id)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{log.read_text()[-4000:]}") from None
        # the hook's run-log line follows the state change (written by a process on busy cores)
        deadline = time.monotonic() + HANG_S
        while not (project / RUN_LOG).exists() or run_id not in (project / RUN_LOG).read_text():
            assert time.monotonic() < deadline, "no run-log line for the crashed run"
            time.sleep(0.5)
    finally:
        stop(proc)
    assert crashed["state_type"] == "CRASHED", (crashed["state"], log.read_text()[-3000:])
    # Killed where the test asked, by the flow-run process that held the repository lock.
    point, pid = marker.read_text().split()
    assert point == "train.member_0.epoch_end.1"
    assert json.loads(lock.read_text())["pid"] == int(pid) and int(pid) != proc.pid
    states = {t["name"]: t["state_type"] for t in api.task_runs(prefect_server, run_id)}
    assert "evaluate" not in states and "publish" not in states, states
    assert record["payload"]["state"] == "Crashed"
    logged = [json.loads(line) for line in (project / RUN_LOG).read_text().splitlines()]
    [line] = [r for r in logged if r["flow_run_id"] == run_id]
    assert line["failed"] is True and line["state"] == "Crashed"
    assert published(project) == before
    # The killed process took its flock with it: the next run gets the repository at once.
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_sigkill_between_the_publish_renames_is_completed_by_the_next_run(
    project_after_run: Path, prefect_env: dict
):
    """SIGKILL inside publish after the database committed the new run (in place) and before
    the export was renamed (tasks/faults.py): the next run first completes the publish from its
    journal, so the export and the champion never stay behind the store; no lock is left held
    and DVC, which saw publish unfinished, is clean after the rerun."""
    from tasks.io import md5_file
    from tasks.publishing.store import read_current

    project = project_after_run
    before = published(project)
    # Publish's metrics file gone: publish alone is out of date, so the run goes straight there.
    (project / "metrics/publish.json").unlink()
    env = {**prefect_env, "FORECAST_KILL_AT": "publish.committed"}
    killed = run(["python", "-m", "flows.pipeline"], project, env=env, check=False)
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr[-3000:])
    assert "publish: ran" not in killed.stdout
    after_kill = published(project)
    # The kill left the store of this publish and the export of the last one, as the issue saw
    # (the same run key: the store differs by its publish sequence number and time).
    assert after_kill["published/forecasts.sqlite"] != before["published/forecasts.sqlite"]
    assert after_kill["published/forecasts.parquet"] == before["published/forecasts.parquet"]
    assert (project / "published/.publish-journal.json").exists()
    # Neither the pipeline's flock nor DVC's repository lock outlived the process.
    with open(project / ".dvc/tmp/forecast-pipeline.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    status = json.loads(run(["dvc", "status", "--json"], project, env=prefect_env).stdout)
    assert list(status) == ["publish"], status

    rerun = run(["python", "-m", "flows.pipeline"], project, env=prefect_env)
    assert "completed a publish killed between its renames" in rerun.stderr + rerun.stdout
    assert "publish: ran" in rerun.stdout, rerun.stdout
    current = read_current(project / "published/forecasts.sqlite")
    exported = pl.read_parquet(project / "published/forecasts.parquet")
    assert exported.equals(current)
    assert md5_file(project / "published/champion.keras") == current["model_md5"][0]
    with sqlite3.connect(project / "published/forecasts.sqlite") as db:
        seqs = [r[0] for r in db.execute("SELECT publish_seq FROM runs ORDER BY publish_seq")]
    assert seqs == [3]  # one run (same run_key): first publish, the killed one, the rerun
    # No journal and no temp file is left.
    assert [p.name for p in (project / "published").glob(".*")] == [".gitignore"]
    assert run(["dvc", "status", "--json"], project, env=prefect_env).stdout.strip() == "{}"


def _server_children(pid: int) -> list[int]:
    """Processes whose parent is `pid` and that run a Prefect API server (uvicorn)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"prefect.server.api.server:create_app" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_run_leaves_no_temporary_prefect_server(project_after_run: Path, tmp_path: Path):
    """Without a Prefect server configured the pipeline starts a temporary one; SIGKILL the
    pipeline (no atexit runs) and the server goes with it instead of living on as an orphan."""
    from tests.conftest import base_env

    env = base_env(PREFECT_HOME=str(tmp_path / "prefect-home"), FORECAST_PREFECT="auto")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.pipeline"], cwd=project_after_run, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    servers: list[int] = []
    try:
        deadline = time.monotonic() + HANG_S  # a Python process starting on busy cores
        while not servers:
            assert proc.poll() is None and time.monotonic() < deadline, "no server started"
            servers = _server_children(proc.pid)
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the kernel signals the child at once; it may take a while to be scheduled and exit
        deadline = time.monotonic() + HANG_S
        while any(_alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in servers if _alive(pid)], "the server outlived the pipeline"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in servers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_a_read_only_or_full_disk_ends_in_one_line_naming_the_file(
    project_after_run: Path, tmp_path: Path, disk: str
):
    """publish on a disk it cannot write: exit 2 and one line naming the file, no traceback;
    the published files as they were."""
    from tests.conftest import base_env

    project = project_after_run
    mount = project / "published"
    aside = tmp_path / "published-aside"
    shutil.copytree(mount, aside)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    try:
        for f in aside.iterdir():
            shutil.copy2(f, mount / f.name)
        if disk == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            reason = "Read-only file system"
        else:
            stat = os.statvfs(mount)
            (mount / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize))
            reason = "No space left on device"
        result = run(
            [sys.executable, "-m", "flows.stages", "publish"], project, env=base_env(),
            check=False,
        )  # fmt: skip
        assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"publish failed: cannot write published/forecasts.sqlite: {reason}")
        # What publish saw is as it was: every file byte-identical, no temp file left.
        seen = {f.name: f.read_bytes() for f in mount.iterdir() if f.name != "filler"}
        assert seen == {f.name: f.read_bytes() for f in aside.iterdir()}
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)

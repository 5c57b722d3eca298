"""A deployment run on a Prefect worker in another clone (flows/workpool.py), for real: a bare git
repository stands in for the team's git server, a directory for the shared DVC remote; clone A
registers the deployment on a process work pool, a `prefect worker` started in clone B (its own
working tree and DVC cache) takes the run, clones the code at the deployment's commit, pulls the
data, runs the pipeline and pushes back; clone A then sees the run: the git tag, `dvc pull`, the
store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import run

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_a_worker_in_a_second_clone_runs_the_deployment_and_the_first_clone_sees_it(
    project: Path, prefect_env: dict, tmp_path: Path
):
    origin, remote = tmp_path / "origin.git", tmp_path / "dvc-remote"
    remote.mkdir()
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    clone_a = project  # a git repository (branch main) with the project committed
    run(["git", "remote", "add", "origin", str(origin)], clone_a)
    run(["git", "push", "-q", "origin", "main"], clone_a)
    run([str(BIN / "dvc"), "remote", "add", "--local", "-f", "local", str(remote)], clone_a)
    commit = run(["git", "rev-parse", "HEAD"], clone_a).stdout.strip()

    env_a = {**prefect_env, "PYTHONPATH": str(clone_a)}
    pool = f"forecast-{tmp_path.name}"[:60]
    deployed = run(
        [sys.executable, "-m", "flows.workpool", "deploy", "--pool", pool,
         "--repository", str(origin), "--no-schedule"],
        clone_a, env=env_a,
    )  # fmt: skip
    assert f"on work pool {pool!r}" in deployed.stdout
    name = "forecast-pipeline/scheduled-pool"
    triggered = run([str(BIN / "prefect"), "deployment", "run", name], clone_a, env=env_a)
    assert "Created flow run" in triggered.stdout, triggered.stdout

    clone_b = tmp_path / "clone-b"
    run(["git", "clone", "-q", str(origin), str(clone_b)], tmp_path)
    env_b = {
        **prefect_env,
        "FORECAST_DVC_REMOTE": str(remote),
        "FORECAST_DVC_CACHE": str(clone_b / ".dvc" / "cache"),
    }
    env_b.pop("PYTHONPATH", None)
    worker = run(
        [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--run-once"], clone_b,
        env=env_b, check=False,
    )  # fmt: skip
    log = worker.stdout + worker.stderr
    assert worker.returncode == 0, log
    assert "Completed" in log, log[-5000:]
    assert not (clone_b / "dvc.lock").exists()  # the run used its own clone, not B's tree
    assert any((clone_b / ".dvc" / "cache").rglob("*")), "B's DVC cache holds the run's bytes"

    # Clone A sees the run: the tag (pushed by the worker), its commit, the bytes in the remote.
    run(["git", "fetch", "-q", "origin", "--tags"], clone_a)
    tags = run(["git", "tag", "--list", "forecast-run/*"], clone_a).stdout.split()
    assert len(tags) == 1, tags
    summary = json.loads(run(["git", "tag", "-l", "--format=%(contents)", tags[0]], clone_a).stdout)
    parent = run(["git", "rev-parse", f"{tags[0]}^{{commit}}^"], clone_a).stdout.strip()
    assert parent == commit  # the run's commit sits on the deployment's commit
    run(["git", "merge", "-q", "--ff-only", tags[0]], clone_a)
    run([str(BIN / "dvc"), "pull", "-q"], clone_a, env=env_a)
    published = run([sys.executable, "-m", "flows.published", "--json"], clone_a, env=env_a).stdout
    current = json.loads(published)
    assert current["run"]["flow_run_id"] == summary["flow_run_id"]
    assert current["forecasts"], "the store holds the run's forecasts"

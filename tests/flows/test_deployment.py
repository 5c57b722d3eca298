"""The scheduled deployment on a real Prefect server: served, triggered by hand and through the
API, one run at a time, the unchanged second run a fast no-op, the changing run versioned."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tasks.io import md5_file
from tests.conftest import run, update_params
from tests.flows import api

pytestmark = pytest.mark.slow

STAGES = ["ingest", "prepare", "train", "evaluate", "publish"]
CRON = "17 5 * * 2"  # not the default: the deployment must take it from params.yaml


def _wait_deployment(server: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return api.get(server, "/deployments/name/forecast-pipeline/scheduled")
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"deployment not served:\n{log.read_text()}") from None
            time.sleep(0.5)


def test_served_deployment_runs_one_at_a_time_reuses_and_versions(
    project: Path, prefect_env: dict, prefect_server: str, tmp_path: Path
):
    update_params(project, {"orchestration": {"cron": CRON, "timezone": "Europe/Berlin"}})
    env = {**prefect_env, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.deploy"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deployment = _wait_deployment(prefect_server, proc, log)
        [schedule] = deployment["schedules"]
        assert schedule["schedule"]["cron"] == CRON
        assert schedule["schedule"]["timezone"] == "Europe/Berlin"
        assert deployment["concurrency_limit"] == 1 or (
            deployment["global_concurrency_limit"]["limit"] == 1
        )
        assert deployment["parameters"]["version"] is True

        # First run by the documented CLI command, the second through the REST API right after.
        triggered = time.monotonic()
        cli = run(["prefect", "deployment", "run", "forecast-pipeline/scheduled"], project, env=env)
        first_id = cli.stdout.split("UUID:")[1].split()[0]
        second_id = api.post(prefect_server, f"/deployments/{deployment['id']}/create_flow_run")[
            "id"
        ]
        runs = api.wait_terminal(prefect_server, [first_id, second_id], timeout=300)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    serve_log = log.read_text()
    for r in runs.values():
        assert r["state_type"] == "COMPLETED", (r["state"], serve_log[-3000:])

    # The server picks which of the two overlapping runs goes first; the one whose stages began
    # first did the work, the other must have waited for it.
    spans = {}
    for rid in runs:
        trs = api.task_runs(prefect_server, rid)
        spans[rid] = (min(t["start_time"] for t in trs), max(t["end_time"] for t in trs))
    first_id, second_id = sorted(runs, key=lambda rid: spans[rid][0])
    first, second = runs[first_id], runs[second_id]

    # All five stages ran as task runs of the first run; its name carries the data version.
    tasks = api.task_runs(prefect_server, first_id)
    assert sorted(t["name"] for t in tasks) == sorted(STAGES)
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}
    data_md5 = md5_file(project / "data/raw/airpassengers.csv")
    assert first["name"].startswith(f"data-{data_md5[:8]}-")
    start_latency = (
        api.states(prefect_server, first_id)[0]["timestamp"],
        first["start_time"],
    )

    # One at a time: the two were in flight together, and none of the second's stages touched
    # the repository before the first's last stage ended. The server's deployment limit usually
    # holds it in `AwaitingConcurrencySlot`; when it does not (seen under heavy load), the
    # pipeline's lock on the repository makes it wait, with a log line saying so.
    second_states = [s["name"] for s in api.states(prefect_server, second_id)]
    assert second["created"] < first["end_time"], (second["created"], first["end_time"])
    first_done, second_began = spans[first_id][1], spans[second_id][0]
    assert second_began >= first_done, (second_states, second_began, first_done)

    # The second saw unchanged inputs: every stage skipped, the model reused, in seconds.
    assert "reused model" in second["state"]["message"]
    assert "no input changed" in second["state"]["message"]
    skipped = api.task_runs(prefect_server, second_id)
    # Its five stages (after any wait for the repository) took seconds: hash checks only.
    stage_span = (
        datetime.fromisoformat(max(t["end_time"] for t in skipped))
        - datetime.fromisoformat(min(t["start_time"] for t in skipped))
    ).total_seconds()
    assert stage_span < 15, stage_span
    assert sorted(t["name"] for t in skipped) == sorted(STAGES)

    # Artifacts of the first run: metrics vs baselines with the gate, forecasts, chart.
    arts = api.artifacts(prefect_server, first_id)
    assert set(arts) >= {"forecast-metrics", "forecast-published", "forecast-chart"}
    assert "seasonal_naive" in arts["forecast-metrics"]["data"]
    assert "Decision: PASSED" in arts["forecast-metrics"]["data"]
    assert "data:image/svg+xml;base64," in arts["forecast-chart"]["data"]

    # Versioned: exactly one run tag (the no-op run adds none), on a commit holding dvc.lock,
    # and the DVC remote next to the project holds the objects.
    tags = run(["git", "tag", "-l", "forecast-run/*"], project).stdout.split()
    assert len(tags) == 1 and tags[0].endswith(data_md5[:8]), tags
    files = run(["git", "show", "--name-only", "--format=", tags[0]], project).stdout.split()
    assert "dvc.lock" in files and "metrics/evaluate.json" in files
    remote = project.parent / "forecast-dvc-remote"
    assert remote.is_dir() and any(p.is_file() for p in remote.rglob("*"))
    assert run(["dvc", "status", "-c", "--json"], project, env=env).stdout.strip() in ("{}", "")
    print(
        f"trigger-to-done {time.monotonic() - triggered:.1f} s; first run created/started "
        f"{start_latency}; no-op stages {stage_span:.1f} s; second run {second_states}"
    )

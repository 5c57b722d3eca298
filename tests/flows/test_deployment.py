"""The scheduled deployment on a real Prefect server: served, triggered by hand and through the
API, one run at a time, the unchanged second run a fast no-op, the changing run versioned."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from flows import registry
from tasks.io import md5_file
from tests.conftest import ROOT, run, update_params
from tests.flows import api
from tests.waits import HANG_S, stop

pytestmark = pytest.mark.slow

STAGES = [s.name for s in registry.stages()]  # every declared stage, in order
TIMEZONE = "Europe/Berlin"


def never_firing_cron(timezone: str = TIMEZONE) -> str:
    """Daily, twelve hours from now in `timezone`: not the default (the deployment must take it
    from params.yaml), and it cannot fire while a test runs, whatever the time of day."""
    now = datetime.now(ZoneInfo(timezone))
    return f"{now.minute} {(now.hour + 12) % 24} * * *"


def next_fire(cron: str, timezone: str = TIMEZONE) -> datetime:
    """Next time a daily `M H * * *` cron fires (what the server must schedule)."""
    minute, hour = (int(x) for x in cron.split()[:2])
    now = datetime.now(ZoneInfo(timezone))
    fire = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return fire if fire > now else fire + timedelta(days=1)


def _wait_deployment(
    server: str, proc: subprocess.Popen, log: Path, timeout: float = HANG_S
) -> dict:
    """The deployment as `proc` (just started) registered it. Another test of the session may
    have served one of the same name before: only a registration after `proc` started counts.
    Generous deadline: the serve process imports Prefect and the pipeline on 2 busy cores."""
    started = datetime.now(UTC) - timedelta(seconds=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = api.get(server, "/deployments/name/forecast-pipeline/scheduled")
            if datetime.fromisoformat(found["updated"]) >= started:
                return found
        except httpx.HTTPStatusError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"deployment not served:\n{log.read_text()}")
        time.sleep(0.5)


def test_served_deployment_runs_one_at_a_time_reuses_and_versions(
    project: Path, prefect_env: dict, prefect_server: str, tmp_path: Path
):
    cron = never_firing_cron()
    update_params(project, {"orchestration": {"cron": cron, "timezone": TIMEZONE}})
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
        assert schedule["schedule"]["cron"] == cron
        assert schedule["schedule"]["timezone"] == TIMEZONE
        assert deployment["concurrency_limit"] == 1 or (
            deployment["global_concurrency_limit"]["limit"] == 1
        )
        assert deployment["parameters"]["version"] is True

        # First run by the documented CLI command, the second through the REST API right after.
        cli = run(["prefect", "deployment", "run", "forecast-pipeline/scheduled"], project, env=env)
        first_id = cli.stdout.split("UUID:")[1].split()[0]
        second_id = api.post(prefect_server, f"/deployments/{deployment['id']}/create_flow_run")[
            "id"
        ]
        runs = api.wait_terminal(prefect_server, [first_id, second_id])
    finally:
        stop(proc)
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

    # One at a time: the two were in flight together, and none of the second's stages touched
    # the repository before the first's last stage ended. The server's deployment limit holds
    # it in `AwaitingConcurrencySlot` when the runner submits it while the first runs; when the
    # runner picked it up only as the first was finishing (seen under heavy load), the
    # pipeline's lock on the repository made it wait, with a log line saying so.
    second_states = [s["name"] for s in api.states(prefect_server, second_id)]
    assert second["created"] < first["end_time"], (second["created"], first["end_time"])
    first_done, second_began = spans[first_id][1], spans[second_id][0]
    assert second_began >= first_done, (second_states, second_began, first_done)
    assert "AwaitingConcurrencySlot" in second_states or (
        "pipeline run: the repository lock" in serve_log
    ), (second_states, serve_log[-3000:])
    assert {"Pending", "Running", "Completed"} <= set(second_states), second_states

    # The second saw unchanged inputs: every stage skipped (hash checks only), the model reused.
    assert "reused model" in second["state"]["message"]
    assert "no input changed" in second["state"]["message"]
    skipped = api.task_runs(prefect_server, second_id)
    assert sorted(t["name"] for t in skipped) == sorted(STAGES)
    assert {t["state_type"] for t in skipped} == {"COMPLETED"}

    # Artifacts of the first run: metrics vs baselines with the gate, forecasts, chart.
    arts = api.artifacts(prefect_server, first_id)
    assert set(arts) >= {"forecast-metrics", "forecast-published", "forecast-chart"}
    assert "seasonal_naive" in arts["forecast-metrics"]["data"]
    assert "Decision: PASSED" in arts["forecast-metrics"]["data"]
    assert "data:image/png;base64," in arts["forecast-chart"]["data"]

    # Versioned: exactly one run tag (the no-op run adds none), on a commit holding dvc.lock,
    # and the DVC remote next to the project holds the objects.
    tags = run(["git", "tag", "-l", "forecast-run/*"], project).stdout.split()
    assert len(tags) == 1 and tags[0].endswith(data_md5[:8]), tags
    files = run(["git", "show", "--name-only", "--format=", tags[0]], project).stdout.split()
    assert "dvc.lock" in files and "metrics/evaluate.json" in files
    remote = project.parent / "forecast-dvc-remote"
    assert remote.is_dir() and any(p.is_file() for p in remote.rglob("*"))
    assert run(["dvc", "status", "-c", "--json"], project, env=env).stdout.strip() in ("{}", "")


APPLY = """
import json, sys
from flows.deploy import build_deployment
from tasks.config import load_config
print(json.dumps({p: str(build_deployment(load_config(p), p).apply()) for p in sys.argv[1:]}))
"""


def _set_state(server: str, run_id: str, state: str, force: bool = False) -> dict:
    body = {"state": {"type": state}, "force": force}
    return api.post(server, f"/flow_runs/{run_id}/set_state", body)


def test_schedule_creates_runs_and_the_server_holds_or_cancels_an_overlapping_run(
    prefect_env: dict, prefect_server: str, tmp_path: Path
):
    """Registered as `flows.deploy` registers them (no runner, no training): the cron schedule
    makes the server create a scheduled run at the cron's next time, and with the limit of one
    run taken, a second run asking to start is held in `AwaitingConcurrencySlot` (on_overlap:
    enqueue) or cancelled (on_overlap: cancel) by the server itself."""
    cron = never_firing_cron()
    params = {}
    for mode in ("enqueue", "cancel"):
        (tmp_path / mode).mkdir()
        params[mode] = tmp_path / mode / "params.yaml"
        params[mode].write_text((ROOT / "params.yaml").read_text())
        update_params(tmp_path / mode, {"orchestration": {
            "deployment": f"overlap-{mode}", "on_overlap": mode, "cron": cron,
            "timezone": TIMEZONE}})  # fmt: skip
    env = {**prefect_env, "PYTHONPATH": str(ROOT)}
    out = run([sys.executable, "-c", APPLY, *map(str, params.values())], tmp_path, env=env)
    ids = json.loads(out.stdout.strip().splitlines()[-1])
    deployment = {mode: ids[str(path)] for mode, path in params.items()}
    created: list[str] = []
    try:
        # The server's scheduler service creates the runs (it polls recently changed
        # deployments every few seconds, slower on 2 busy cores).
        body = {
            "deployments": {"id": {"any_": [deployment["enqueue"]]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "sort": "EXPECTED_START_TIME_ASC",
        }
        deadline = time.monotonic() + HANG_S
        while not (scheduled := api.post(prefect_server, "/flow_runs/filter", body)):
            assert time.monotonic() < deadline, "the schedule created no run"
            time.sleep(1)
        created += [r["id"] for r in scheduled]
        assert scheduled[0]["auto_scheduled"] is True
        expected = datetime.fromisoformat(scheduled[0]["expected_start_time"])
        assert expected == next_fire(cron), (expected, next_fire(cron))

        for mode, dep_id in deployment.items():
            first, second = (
                api.post(prefect_server, f"/deployments/{dep_id}/create_flow_run")["id"]
                for _ in range(2)
            )
            created += [first, second]
            assert _set_state(prefect_server, first, "PENDING")["status"] == "ACCEPT"
            assert _set_state(prefect_server, first, "RUNNING")["status"] == "ACCEPT"
            held = _set_state(prefect_server, second, "PENDING")
            assert held["status"] == "REJECT", (mode, held)
            if mode == "enqueue":
                assert held["state"]["type"] == "SCHEDULED"
                assert held["state"]["name"] == "AwaitingConcurrencySlot"
                # The slot freed, the waiting run may start.
                assert _set_state(prefect_server, first, "COMPLETED")["status"] == "ACCEPT"
                assert _set_state(prefect_server, second, "PENDING")["status"] == "ACCEPT"
            else:
                assert held["state"]["type"] == "CANCELLED"
                assert api.flow_run(prefect_server, second)["state_type"] == "CANCELLED"
    finally:
        # These deployments never run: remove them and their runs from the shared server.
        for run_id in created:
            httpx.delete(f"{prefect_server}/flow_runs/{run_id}", timeout=10)
        for dep_id in deployment.values():
            httpx.delete(f"{prefect_server}/deployments/{dep_id}", timeout=10)

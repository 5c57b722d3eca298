"""The pipeline run by Prefect against a real local server, and `dvc repro` seen by Prefect."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows import registry
from tests.conftest import run, update_params
from tests.flows import api

pytestmark = pytest.mark.slow

STAGES = [s.name for s in registry.stages()]  # every declared stage, in order


def flow_runs(server: str, flow_name: str, after: str | None = None) -> list[dict]:
    """Runs of `flow_name`, newest first; `after` (ISO time) keeps those created since then, as
    the session's server also holds other tests' runs."""
    body = {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC"}
    if after:
        # Not a deployment's run: served deployments (other tests) leave future scheduled runs.
        body["flow_runs"] = {
            "expected_start_time": {"after_": after},
            "deployment_id": {"is_null_": True},
        }
    return api.post(server, "/flow_runs/filter", body)


def test_prefect_run_leaves_dvc_consistent_and_repro_reports_to_prefect(
    versioned_prefect_run: dict, versioned_project: Path, prefect_env: dict, prefect_server: str
):
    # The session's versioned pipeline run (tests/conftest.py), in a private copy.
    project = versioned_project
    first = versioned_prefect_run["stdout"]
    assert all(f"{stage}: ran" in first for stage in STAGES), first

    # DVC sees exactly what the Prefect run produced.
    assert run(["dvc", "status", "--json"], project, env=prefect_env).stdout.strip() == "{}"
    lock = (project / "dvc.lock").read_text()
    assert all(f"  {stage}:" in lock for stage in STAGES)

    pipeline_run = api.flow_run(prefect_server, versioned_prefect_run["flow_run_id"])
    flow = api.get(prefect_server, f"/flows/{pipeline_run['flow_id']}")
    assert flow["name"] == "forecast-pipeline"
    assert pipeline_run["state_type"] == "COMPLETED"
    tasks = api.task_runs(prefect_server, pipeline_run["id"])
    assert sorted(t["name"] for t in tasks) == sorted(STAGES)
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}

    # Every published row names the flow run that published it.
    with sqlite3.connect(project / "published/forecasts.sqlite") as db:
        run_ids = {r[0] for r in db.execute("SELECT DISTINCT flow_run_id FROM forecasts")}
    assert run_ids == {pipeline_run["id"]}

    # Unchanged inputs: every stage is skipped on DVC's hashes.
    again = run(["python", "-m", "flows.pipeline"], project, env=prefect_env)
    assert all(f"{stage}: skipped" in again.stdout for stage in STAGES), again.stdout

    # `dvc repro` runs each affected stage as its own Prefect flow run. A key only the monitor
    # reads (and writes into metrics/monitor.json, which publish reads): the cheapest change that
    # still reruns a stage downstream of the one that reads it.
    update_params(project, {"monitor": {"drift_alpha": 0.02}})
    repro_started = datetime.now(UTC).isoformat()
    repro = run(["dvc", "repro"], project, env=prefect_env)
    # Exactly the stage that reads the changed key and the one whose input it changed, and they
    # report to Prefect.
    assert re.findall(r"Running stage '(\w+)'", repro.stdout) == ["monitor", "publish"]
    for stage in ("monitor", "publish"):
        runs = flow_runs(prefect_server, stage, after=repro_started)
        assert runs and runs[0]["state_type"] == "COMPLETED", stage
    for stage in ("ingest", "train"):
        assert flow_runs(prefect_server, stage, after=repro_started) == [], stage

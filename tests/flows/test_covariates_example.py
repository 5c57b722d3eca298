"""The bundled covariates example (examples/covariates/params.yaml) through `dvc repro` and the
Prefect pipeline, in a copy of the project: the future file is a DVC dependency, the published
forecasts cover its horizon, and the metrics, champion, publish summary and the Prefect metrics
artifact name the covariates the model used."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.publishing.store import read_current
from tests.conftest import TINY_PARAMS, base_env, git_commit, make_project, run, update_params
from tests.flows import api

pytestmark = pytest.mark.slow

USED = {"past": ["temperature"], "future": ["promotion"], "static": ["store_type"]}
FUTURE = "data/examples/covariates/future.csv"


def example_project(dest: Path) -> Path:
    project = make_project(dest)
    shutil.copy(project / "examples/covariates/params.yaml", project / "params.yaml")
    update_params(project, TINY_PARAMS)
    run([sys.executable, "-m", "flows.dvcgen"], project)
    git_commit(project, "covariates example")
    return project


def test_covariates_example_through_dvc_repro_and_the_prefect_pipeline(
    tmp_path: Path, prefect_env: dict, prefect_server: str
):
    project = example_project(tmp_path / "project")
    ingest = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["ingest"]
    assert "${data.future_path}" in ingest["deps"]

    run(["dvc", "repro"], project, env=base_env())

    assert run(["dvc", "status", "--json"], project, env=base_env()).stdout.strip() == "{}"
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert FUTURE in [d["path"] for d in lock["stages"]["ingest"]["deps"]]
    read = lambda rel: json.loads((project / rel).read_text())  # noqa: E731
    assert read("metrics/evaluate.json")["covariates"] == USED
    assert read("metrics/publish.json")["covariates"] == USED
    assert read("published/champion.json")["covariates"] == USED
    assert read("metrics/ingest.json")["future_rows"] == 4 * 12
    forecasts = pl.read_parquet(project / "published/forecasts.parquet")
    assert forecasts.height == 4 * 12
    assert forecasts["timestamp"].min() == datetime(2018, 1, 1)
    assert forecasts["timestamp"].max() == datetime(2018, 12, 1)
    # Every published row says which covariates its model read (store lineage, and the export).
    stored = read_current(project / "published/forecasts.sqlite")
    assert [json.loads(c) for c in stored["covariates"].unique()] == [USED]
    assert forecasts["covariates"].to_list() == stored["covariates"].to_list()

    # A new promotion plan: DVC sees the future file changed, and the Prefect pipeline reruns
    # from ingest and publishes a new run.
    plan = pl.read_csv(project / FUTURE)
    plan.with_columns((1 - pl.col("promotion")).alias("promotion")).write_csv(project / FUTURE)
    status = json.loads(run(["dvc", "status", "--json"], project, env=base_env()).stdout)
    assert "ingest" in status

    run([sys.executable, "-m", "flows.pipeline"], project, env=prefect_env)

    assert run(["dvc", "status", "--json"], project, env=base_env()).stdout.strip() == "{}"
    record = json.loads((project / "logs/pipeline-runs.jsonl").read_text().splitlines()[-1])
    flow_run = api.flow_run(prefect_server, record["flow_run_id"])
    assert flow_run["state_type"] == "COMPLETED"
    tasks = {t["name"]: t["state_type"] for t in api.task_runs(prefect_server, flow_run["id"])}
    assert set(tasks.values()) == {"COMPLETED"} and "ingest" in tasks
    metrics = api.artifacts(prefect_server, flow_run["id"])["forecast-metrics"]
    assert (
        "Covariates the model used: past: temperature; future: promotion; static: store_type"
        in metrics["data"]
    )
    # The first run's champion (same covariates) is rescored, not refused as incompatible.
    champion = read("metrics/gate.json")["champion"]
    assert champion["status"] in ("compared", "no_comparable_folds"), champion
    with sqlite3.connect(project / "published/forecasts.sqlite") as db:
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert runs == 2

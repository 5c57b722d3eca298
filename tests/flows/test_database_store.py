"""The pipeline with its store on a real PostgreSQL server (issue 14): publish writes the
database in place and a manifest as its DVC out, `flows.published` reads the server, a rollback
republishes an earlier run from the database, and no password reaches a file, log or output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.publishing.store import list_runs, read_current
from tests.conftest import git_commit, run, update_params
from tests.flows import api

pytestmark = pytest.mark.slow


def _no_password_anywhere(project: Path, *outputs: str) -> None:
    password = os.environ["FORECAST_TEST_PG_PASSWORD"]
    for text in outputs:
        assert password not in text
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.stat().st_size < 5_000_000:
            assert password.encode() not in path.read_bytes(), path


def test_pipeline_publishes_into_postgresql_then_rolls_back(
    project_after_run: Path, pg_url: str, prefect_env: dict, prefect_server: str
):
    # The shared first run (tests/conftest.py) moved to a store on PostgreSQL: publish alone is
    # out of date (its params and its DVC out changed), so the first run here publishes that
    # run's model into the database. Its SQLite store goes: this run must not write another.
    project = project_after_run
    (project / "published/forecasts.sqlite").unlink()
    update_params(project, {"publish": {"url": pg_url}})
    env = prefect_env  # inherits FORECAST_TEST_PG_PASSWORD, which the URL names
    # The publish stage's DVC out follows the params: the manifest instead of the store file.
    run(["python", "-m", "flows.dvcgen"], project, env=env)
    git_commit(project, "the store on PostgreSQL")
    first = run(["python", "-m", "flows.pipeline", "--version"], project, env=env)
    assert "publish: ran" in first.stdout, first.stdout
    assert "train: skipped" in first.stdout, first.stdout
    manifest = json.loads((project / "published/manifest.json").read_text())
    first_current = read_current(pg_url)
    assert manifest["run_key"] == first_current["run_key"][0]
    assert manifest["rows"] == first_current.height
    assert manifest["store"].startswith("postgresql+psycopg://forecast:***@127.0.0.1:")
    assert not (project / "published/forecasts.sqlite").exists()  # nothing in the file store
    assert pl.read_parquet(project / "published/forecasts.parquet").equals(first_current)
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    outs = {o["path"] for o in lock["stages"]["publish"]["outs"]}
    assert "published/manifest.json" in outs and "published/forecasts.sqlite" not in outs
    assert run(["dvc", "status", "--json"], project, env=env).stdout.strip() == "{}"

    # The Prefect artifacts of that run show what the database holds (the export follows it).
    record = json.loads((project / "logs/pipeline-runs.jsonl").read_text().splitlines()[-1])
    artifacts = api.artifacts(prefect_server, record["flow_run_id"])
    table = artifacts["forecast-published"]["data"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert [r["forecast"] for r in rows] == first_current["forecast"].round(3).to_list()
    assert {r["model_version"] for r in rows} == set(first_current["model_version"])
    _no_password_anywhere(project, *(json.dumps(a) for a in artifacts.values()))

    # flows.published reads the server the params name.
    shown = run(["python", "-m", "flows.published", "--json"], project, env=env)
    assert json.loads(shown.stdout)["run"]["run_key"] == manifest["run_key"]

    # A second run on other data: a new run in the database, the manifest follows.
    raw = project / "data/raw/airpassengers.csv"
    raw.write_text("\n".join(raw.read_text().splitlines()[:-12]) + "\n")
    second = run(["python", "-m", "flows.pipeline", "--version"], project, env=env)
    assert "publish: ran" in second.stdout, second.stdout
    assert list_runs(pg_url).height == 2
    second_key = read_current(pg_url)["run_key"][0]
    assert second_key != manifest["run_key"]

    rolled = run(["python", "-m", "flows.runs", "rollback", "previous"], project, env=env)
    assert "rolled back" in rolled.stdout, rolled.stdout
    current = read_current(pg_url)
    assert current.drop("stale").equals(first_current.drop("stale"))
    assert list_runs(pg_url)["run_key"].to_list() == [second_key, manifest["run_key"]]
    assert json.loads((project / "published/manifest.json").read_text()) == manifest
    assert pl.read_parquet(project / "published/forecasts.parquet").equals(current)
    assert run(["dvc", "status", "--json"], project, env=env).stdout.strip() == "{}"
    _no_password_anywhere(
        project, first.stdout + first.stderr, second.stdout + second.stderr, rolled.stdout
    )

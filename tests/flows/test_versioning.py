"""Every versioned run restorable byte for byte from the DVC remote; rollback of the published
forecasts to an earlier run, kept by the next scheduled run."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from tasks.io import md5_file
from tasks.publishing.store import read_current
from tests.conftest import run

pytestmark = pytest.mark.slow

ARTIFACTS = (
    "data/validated/series.parquet",
    "data/prepared/arrays.npz",
    "models/scaler.npz",
    "models/model.keras",
    "published/forecasts.sqlite",
    "published/forecasts.parquet",
    "metrics/evaluate.json",
)


def snapshot(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in ARTIFACTS}


def pipeline(project: Path, env: dict, *args: str):
    return run(["python", "-m", "flows.pipeline", *args], project, env=env)


def runs_cli(project: Path, env: dict, *args: str, check: bool = True):
    return run(["python", "-m", "flows.runs", *args], project, env=env, check=check)


def test_two_runs_restore_the_first_byte_identical_then_roll_back_to_it(
    versioned_project: Path, prefect_env: dict, tmp_path: Path
):
    # The first versioned run is the session's shared one (tests/conftest.py), in a copy.
    project, env = versioned_project, prefect_env
    first = snapshot(project)
    first_forecasts = read_current(project / "published/forecasts.sqlite")

    # New data: the last year of the series dropped (a different series, a different model).
    raw = project / "data/raw/airpassengers.csv"
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join(lines[:-12]) + "\n")
    second_run = pipeline(project, env, "--version")
    assert "versioned as forecast-run/" in second_run.stdout
    second = snapshot(project)
    for rel in ("data/validated/series.parquet", "models/model.keras"):
        assert first[rel] != second[rel], rel

    listing = runs_cli(project, env, "list").stdout
    tags = [line.split()[0] for line in listing.splitlines() if line.startswith("forecast-run/")]
    assert len(tags) == 2, listing
    newest, oldest = tags

    # Restore the first run with an empty local cache: every byte comes from the DVC remote.
    cache = project / ".dvc/cache"
    cache.rename(tmp_path / "cache-aside")
    restored = tmp_path / "restored"
    out = runs_cli(project, env, "restore", oldest, "--out", str(restored)).stdout
    shutil.rmtree(cache)
    (tmp_path / "cache-aside").rename(cache)
    assert "models/model.keras" in out
    assert snapshot(restored) == first
    assert snapshot(project) == second  # the workspace is untouched

    # Roll the published forecasts back to the first run's model.
    before = read_current(project / "published/forecasts.sqlite")
    assert before["model_md5"][0] != first_forecasts["model_md5"][0]
    rolled = runs_cli(project, env, "rollback", "previous").stdout
    assert f"those of {oldest}" in rolled, rolled
    current = read_current(project / "published/forecasts.sqlite")
    first_model = first_forecasts["model_md5"].unique().to_list()
    assert current["model_md5"].unique().to_list() == first_model
    assert current.select("series_id", "timestamp", "forecast").equals(
        first_forecasts.select("series_id", "timestamp", "forecast")
    )
    # The intervals come back with their forecasts, and the first model is champion again.
    intervals = ["lo_80", "hi_80", "lo_95", "hi_95"]
    assert first_forecasts["lo_95"].null_count() == 0
    assert current.select(intervals).equals(first_forecasts.select(intervals))
    assert md5_file(project / "published/champion.keras") == first_model[0]
    exported = pl.read_parquet(project / "published/forecasts.parquet")
    assert exported["forecast"].to_list() == first_forecasts["forecast"].to_list()
    # Both runs stay in the store's history; the rollback is itself versioned.
    assert run(["git", "tag", "-l", "forecast-run/*"], project).stdout.count("\n") == 3
    assert run(["dvc", "status", "--json"], project, env=env).stdout.strip() == "{}"

    # The next scheduled run on unchanged inputs keeps the rollback.
    again = pipeline(project, env, "--version")
    assert "publish: skipped" in again.stdout, again.stdout
    assert "reused model" in again.stdout
    after = read_current(project / "published/forecasts.sqlite")
    assert after["model_md5"].unique().to_list() == first_model
    assert newest != oldest


def test_a_manual_publish_is_versioned_by_the_next_scheduled_run(
    versioned_project: Path, prefect_env: dict
):
    """A manual run (no --version) publishes; the scheduled run after it changes nothing itself
    but versions what the manual run published (issue 11, point 10)."""
    project, env = versioned_project, prefect_env
    (project / "metrics/publish.json").unlink()  # publish alone is out of date: it republishes
    manual = pipeline(project, env)
    assert "publish: ran" in manual.stdout and "versioned" not in manual.stdout, manual.stdout
    scheduled = pipeline(project, env, "--version")
    assert "publish: skipped" in scheduled.stdout, scheduled.stdout
    assert "versioned as forecast-run/" in scheduled.stdout, scheduled.stdout
    assert "unversioned since the last version: " in scheduled.stdout
    assert "published/forecasts.sqlite" in scheduled.stdout
    tags = run(["git", "tag", "-l", "forecast-run/*"], project).stdout.split()
    assert len(tags) == 2
    # The newest tag records the published files as they are now.
    newest = runs_cli(project, env, "list").stdout.splitlines()[1].split()[0]
    tagged = run(["git", "show", f"{newest}:dvc.lock"], project).stdout
    assert tagged == (project / "dvc.lock").read_text()
    # Versioned now: the next scheduled run has nothing to add.
    again = pipeline(project, env, "--version")
    assert "nothing changed since the last version, no new version" in again.stdout
    assert len(run(["git", "tag", "-l", "forecast-run/*"], project).stdout.split()) == 2

"""A source of several series where one breaks, through the whole pipeline (`forecast pipeline`
against the session's Prefect server, real DVC, tiny TensorFlow settings), three data updates:

1. every series good (data through 1959-12): all three published;
2. six more months, series `c` broken (a value below data.min_value): the run publishes `a` and
   `b`, lists `c` as quarantined in metrics/ingest.json, and the current view keeps run 1's
   forecasts of `c`, marked stale;
3. six more months, `c` still broken: `a` and `b` move on, `c` still shows run 1's forecasts,
   stale (not lost because run 2 had none of its own).

Every current row's lineage says what its model trained through (run 1's for the stale rows),
and the pipeline's summary names the shipped model the store's rows carry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from tasks.io import md5_file
from tests.conftest import ROOT, git_commit, run, update_params

pytestmark = pytest.mark.slow

SERIES = {"a": 1.0, "b": 2.5, "c": 0.5}  # scale of AirPassengers each series is
SOURCE = "data/raw/three.csv"


def _write_source(project: Path, through: str, broken: bool) -> None:
    """The three series through `through`; with `broken`, `c` has a negative value in its last
    three months (data.min_value is 0)."""
    air = pl.read_csv(ROOT / "data/raw/airpassengers.csv", try_parse_dates=True)
    air = air.filter(pl.col("timestamp") <= pl.lit(through).str.to_date())
    parts = []
    for sid, scale in SERIES.items():
        part = air.with_columns(
            pl.lit(sid).alias("series_id"), (pl.col("value") * scale).alias("value")
        )
        if broken and sid == "c":
            bad = pl.int_range(pl.len()) >= pl.len() - 3
            part = part.with_columns(
                pl.when(bad).then(-5.0).otherwise(pl.col("value")).alias("value")
            )
        parts.append(part.select("series_id", "timestamp", "value"))
    (project / SOURCE).write_text(pl.concat(parts).write_csv())


def _pipeline(project: Path, env: dict) -> tuple[str, str]:
    """Run the pipeline; (its stdout, the model version its summary's last line names:
    "ran ingest, ...; trained model <version>")."""
    done = run([sys.executable, "-m", "flows.pipeline"], project, env=env)
    return done.stdout, done.stdout.strip().splitlines()[-1].split()[-1]


def _current(project: Path) -> pl.DataFrame:
    from tasks.publishing.store import read_current

    return read_current(project / "published/forecasts.sqlite")


def _by_series(current: pl.DataFrame) -> dict[str, dict]:
    return {
        sid: {
            "run_key": set(part["run_key"]),
            "stale": set(part["stale"]),
            "trained_through": set(part["trained_through"]),
            "first": part["timestamp"].min().isoformat(),
            "forecast": part["forecast"].to_list(),
        }
        for (sid,), part in current.group_by("series_id", maintain_order=True)
    }


def _published_json(project: Path, env: dict) -> dict:
    shown = run([sys.executable, "-m", "flows.published", "--json"], project, env=env)
    return json.loads(shown.stdout)


def test_a_broken_series_is_reported_and_keeps_its_last_forecasts_stale(
    project: Path, prefect_env: dict
):
    update_params(project, {"data": {"path": SOURCE, "max_bad_series_fraction": 0.5}})
    _write_source(project, "1959-12-01", broken=False)
    git_commit(project, "three series")

    # 1. Every series good.
    _pipeline(project, prefect_env)
    first = _by_series(_current(project))
    assert set(first) == {"a", "b", "c"}
    assert all(s["stale"] == {False} for s in first.values())
    assert all(s["first"] == "1960-01-01T00:00:00" for s in first.values())
    assert all(s["trained_through"] == {"1959-12-01T00:00:00"} for s in first.values())
    run_1 = first["a"]["run_key"]

    # 2. Six more months; c breaks.
    _write_source(project, "1960-06-01", broken=True)
    _pipeline(project, prefect_env)
    ingest = json.loads((project / "metrics/ingest.json").read_text())["quarantined"]
    assert ingest["series"] == 1 and ingest["of_series"] == 3
    (listed,) = ingest["listed"]
    assert listed["series_id"] == "c" and listed["rows"] == 138  # 1949-01 .. 1960-06
    reasons = {r["check"]: r["failing"] for r in listed["reasons"]}
    assert reasons["min_value"] == 3, reasons  # the three negative months
    assert {row["timestamp"][:7] for row in listed["sample"]} == {"1960-04", "1960-05", "1960-06"}
    second = _by_series(_current(project))
    assert set(second) == {"a", "b", "c"}
    for sid in ("a", "b"):  # published by run 2, from its data through 1960-06
        assert second[sid]["run_key"] != run_1 and second[sid]["stale"] == {False}
        assert second[sid]["first"] == "1960-07-01T00:00:00"
        assert second[sid]["trained_through"] == {"1960-06-01T00:00:00"}
    # c: exactly run 1's forecasts, with run 1's lineage, marked stale.
    assert second["c"]["run_key"] == run_1 and second["c"]["stale"] == {True}
    assert second["c"]["forecast"] == first["c"]["forecast"]
    assert second["c"]["trained_through"] == {"1959-12-01T00:00:00"}
    # The shipped model trained on a and b only: ingest set c aside before prepare.
    meta = json.loads((project / "published/champion.json").read_text())
    assert meta["trained_through"] == {"a": "1960-06-01T00:00:00", "b": "1960-06-01T00:00:00"}

    # 3. Six more months; c still broken.
    _write_source(project, "1960-12-01", broken=True)
    stdout, version = _pipeline(project, prefect_env)
    third = _by_series(_current(project))
    assert third["c"]["run_key"] == run_1 and third["c"]["stale"] == {True}
    assert third["c"]["forecast"] == first["c"]["forecast"]
    for sid in ("a", "b"):
        assert third[sid]["run_key"] not in (run_1, second[sid]["run_key"])
        assert third[sid]["first"] == "1961-01-01T00:00:00" and third[sid]["stale"] == {False}
        assert third[sid]["trained_through"] == {"1960-12-01T00:00:00"}
    assert json.loads((project / "metrics/ingest.json").read_text())["quarantined"]["series"] == 1

    # The run as `forecast published` shows it: the shipped model, what it trained through.
    shown = _published_json(project, prefect_env)
    shipped = md5_file(project / "models/model_full.keras")[:12]
    assert shown["run"]["model_version"] == shipped
    assert shown["run"]["trained_through"] == "1960-12-01T00:00:00"
    assert shown["series"] == 3
    # The pipeline's summary names that same model (not the train stage's).
    assert version == shipped, stdout

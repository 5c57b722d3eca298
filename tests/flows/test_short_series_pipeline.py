"""Series too short for the LSTM through the whole pipeline (`dvc repro`, tiny TensorFlow
settings): AirPassengers (144 months, an LSTM series: the defaults need 120), a 40-month series
(folds 0 and 1 only) and a 3-month one (no fold). None is quarantined; all three are published,
each row saying which model and why; the LSTM trains on AirPassengers alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import ROOT, base_env, git_commit, run, update_params

pytestmark = pytest.mark.slow

SOURCE = "data/raw/short.csv"


def _write_source(project: Path) -> None:
    air = pl.read_csv(ROOT / "data/raw/airpassengers.csv", try_parse_dates=True)
    parts = [
        air.with_columns(pl.lit("air").alias("series_id")),
        air.tail(40).with_columns(pl.lit("s40").alias("series_id")),
        air.tail(3).with_columns(pl.lit("s3").alias("series_id")),
    ]
    frame = pl.concat(p.select("series_id", "timestamp", "value") for p in parts)
    (project / SOURCE).write_text(frame.write_csv())


def test_short_series_are_published_by_a_candidate_that_says_why(project: Path):
    from tasks.publishing.store import read_current

    # The gate judges every series scored on the latest fold (short ones too), and s40's fold-0
    # MASE rests on a 16-step in-sample scale (about 26): the tiny params' absolute divergence
    # guard (gate.max_mase 10) would refuse it; params.yaml's default has that check off.
    update_params(project, {"data": {"path": SOURCE}, "gate": {"max_mase": None}})
    _write_source(project)
    git_commit(project, "a long and two short series")
    run(["dvc", "repro"], project, env=base_env())

    ingest = json.loads((project / "metrics/ingest.json").read_text())
    assert ingest["quarantined"]["series"] == 0
    current = read_current(project / "published/forecasts.sqlite")
    rows = {
        sid: (set(part["model"]), set(part["reason"]), part.height)
        for (sid,), part in current.group_by("series_id")
    }
    assert set(rows) == {"air", "s40", "s3"} and all(r[2] == 24 for r in rows.values())
    assert rows["air"][1] == {"chosen on 2 folds"}
    assert rows["s40"][0] <= {"naive", "drift"}  # seasonal naive cannot fit fold 1's 4 steps
    assert rows["s40"][1] == {"too short for the LSTM (40 < 120 steps): best candidate on 1 fold"}
    assert rows["s3"] == (
        {"naive"},
        {"too short for the LSTM (3 < 120 steps) and for any fold: naive by default"},
        24,
    )
    s3 = current.filter(pl.col("series_id") == "s3")
    assert s3["timestamp"].min().isoformat() == "1961-01-01T00:00:00"
    assert s3["forecast"].to_list() == pytest.approx([432.0] * 24)  # the last value, 1960-12
    export = pl.read_parquet(project / "published/forecasts.parquet")
    assert export["reason"].to_list() == current["reason"].to_list()
    shown = run([sys.executable, "-m", "flows.published", "--json"], project, env=base_env())
    rows_shown = json.loads(shown.stdout)["forecasts"]
    assert {
        (r["series_id"], r["model"], r["reason"]) for r in rows_shown if r["series_id"] == "s3"
    } == {
        ("s3", "naive", "too short for the LSTM (3 < 120 steps) and for any fold: naive by default")
    }

    selection = json.loads((project / "metrics/evaluate.json").read_text())["selection"]
    assert sum(selection["counts"].values()) == 1  # the LSTM series
    short = selection["short_series"]
    assert short["series"] == 2 and short["scored_on_fold_0"] == 1
    assert short["reasons"] == {"chosen_on_older_folds": 1, "default_rule_no_fold": 1}
    assert sum(n for by in selection["published_by"].values() for n in by.values()) == 3
    # the LSTM trained on the one series long enough for it
    champion = json.loads((project / "published/champion.json").read_text())
    assert champion["series_ids"] == ["air"]
    assert set(champion["choices"]) == {"air", "s40", "s3"}

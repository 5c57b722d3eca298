"""README "Your data", followed literally (issue 24.3): a file in another shape (columns `date`,
`store`, `sales`; month-end dates) runs through the whole pipeline (`dvc repro`, tiny TensorFlow
settings) with only data.path and data.columns set. Nothing is quarantined, and the forecasts
continue each store's month ends under its own name."""

from __future__ import annotations

import calendar
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import ROOT, base_env, git_commit, run, update_params

pytestmark = pytest.mark.slow

SOURCE = "data/raw/stores.csv"


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _write_source(project: Path) -> list[date]:
    """Two stores from 2011-06-30 on: AirPassengers' 144 months and a 30-month newcomer (too
    short for the LSTM: a statistical candidate publishes it)."""
    values = pl.read_csv(ROOT / "data/raw/airpassengers.csv")["value"].to_list()
    dates = [month_end(2011 + (5 + i) // 12, (5 + i) % 12 + 1) for i in range(len(values))]
    rows = [(d.isoformat(), "north", v) for d, v in zip(dates, values, strict=True)]
    rows += [
        (d.isoformat(), "south", v / 2) for d, v in zip(dates[-30:], values[-30:], strict=True)
    ]
    frame = pl.DataFrame(rows, schema=["date", "store", "sales"], orient="row")
    (project / SOURCE).write_text(frame.write_csv())
    return dates


def test_a_file_with_other_column_names_and_month_end_dates_runs(project: Path):
    from tasks.publishing.store import read_current

    dates = _write_source(project)
    assert dates[0] == date(2011, 6, 30) and dates[1] == date(2011, 7, 31)
    # The README's two settings, nothing else.
    update_params(
        project,
        {
            "data": {
                "path": SOURCE,
                "columns": {"series_id": "store", "timestamp": "date", "value": "sales"},
            }
        },  # fmt: skip
    )
    git_commit(project, "my own file")
    run(["dvc", "repro"], project, env=base_env())

    ingest = json.loads((project / "metrics/ingest.json").read_text())
    assert ingest["quarantined"]["series"] == 0
    assert ingest["series"] == 2 and ingest["rows"] == 144 + 30

    current = read_current(project / "published/forecasts.sqlite")
    assert set(current["series_id"]) == {"north", "south"}
    last = dates[-1]
    for (store,), part in current.group_by("series_id"):
        stamps = part.sort("timestamp")["timestamp"].dt.date().to_list()
        y, m = last.year, last.month
        want = [month_end(y + (m - 1 + h) // 12, (m - 1 + h) % 12 + 1) for h in range(1, 25)]
        assert stamps == want, store
    south = current.filter(pl.col("series_id") == "south")
    assert all(r.startswith("too short for the LSTM") for r in south["reason"])

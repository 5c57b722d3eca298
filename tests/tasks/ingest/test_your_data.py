"""A user's own file (issue 24.3): data.columns maps other column names, a single-series file
needs no id column, and calendar frequencies keep the data's anchor (month ends, quarter ends,
weeks ending on a Sunday), in ingest's grid and in the forecast timestamps."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, parse_config
from tasks.errors import ConfigError, DataSourceError
from tasks.ingest import ingest, read_source
from tasks.ingest.covariate_checks import horizon_grid
from tasks.publishing.forecasts import future_timestamps

SMALL = {"prepare": {"lookback": 2, "validation_steps": 1}, "forecast": {"horizon": 2}}
STORE = {"series_id": "store", "timestamp": "date", "value": "sales"}


def cfg(**data) -> Config:
    return parse_config({**SMALL, "data": data})


def month_ends(first: date, n: int, months: int = 1) -> list[date]:
    out, year, month = [], first.year, first.month
    for _ in range(n):
        nxt = date(year + month // 12, month % 12 + 1, 1)
        out.append(nxt - timedelta(days=1))
        year, month = year + (month + months - 1) // 12, (month + months - 1) % 12 + 1
    return out


def write(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def store_file(tmp_path: Path, dates: list[date]) -> Path:
    rows = [[d.isoformat(), s, 100 + 7 * i + (i * i) % 5] for s in ("north", "south")
            for i, d in enumerate(dates)]  # fmt: skip
    return write(tmp_path / "sales.csv", ["date", "store", "sales"], rows)


# ------------------------------------------------------------------------------ data.columns
def test_mapped_columns_are_read_under_the_long_format_names(tmp_path):
    config = cfg(columns=STORE)
    frame = read_source(store_file(tmp_path, month_ends(date(2021, 6, 30), 12)),
                        columns=config.data.columns.mapping())  # fmt: skip
    assert {SERIES_ID, TIMESTAMP, VALUE} <= set(frame.columns)
    assert not {"store", "date", "sales"} & set(frame.columns)
    out = ingest(frame, config)
    assert out.quarantined.height == 0
    assert sorted(out.frame[SERIES_ID].unique().to_list()) == ["north", "south"]


def test_a_file_without_an_id_column_is_one_series_named_after_the_file(tmp_path):
    rows = [[d.isoformat(), 50 + i % 7] for i, d in enumerate(month_ends(date(2020, 1, 31), 20))]
    path = write(tmp_path / "shop.csv", ["date", "sales"], rows)
    for columns in ({"timestamp": "date", "value": "sales"}, {**STORE, "series_id": None}):
        config = cfg(columns=columns)
        out = ingest(read_source(path, columns=config.data.columns.mapping()), config)
        assert out.frame[SERIES_ID].unique().to_list() == ["shop"]
        assert out.frame.height == 20 and out.quarantined.height == 0


def test_a_mapped_column_the_file_lacks_is_named_with_its_key_and_the_fix(tmp_path):
    path = store_file(tmp_path, month_ends(date(2021, 6, 30), 3))
    columns = {**STORE, "value": "revenue"}
    with pytest.raises(DataSourceError) as info:
        read_source(path, columns=cfg(columns=columns).data.columns.mapping())
    msg = str(info.value)
    assert "revenue (data.columns.value)" in msg
    assert "found columns: date, store, sales" in msg
    assert "set data.columns in params.yaml" in msg


def test_the_default_names_on_another_header_point_at_data_columns(tmp_path):
    path = store_file(tmp_path, month_ends(date(2021, 6, 30), 3))
    with pytest.raises(DataSourceError) as info:
        read_source(path)
    assert "missing required column(s) series_id, timestamp, value" in str(info.value)
    assert "data.columns" in str(info.value)


def test_a_long_format_name_taken_by_another_file_column_is_refused(tmp_path):
    rows = [["2021-06-30", "a", 1, 2]]
    path = write(tmp_path / "s.csv", ["date", "store", "sales", "value"], rows)
    with pytest.raises(DataSourceError, match="value from sales"):
        read_source(path, columns=STORE)


@pytest.mark.parametrize(
    "columns, says",
    [
        ({"timestamp": "day", "value": "day"}, "names one source column twice"),
        ({"timestamp": " "}, "data.columns.timestamp is empty"),
    ],
)
def test_bad_column_maps_are_refused_by_key(columns, says):
    with pytest.raises(ConfigError, match=says):
        parse_config({"data": {"columns": columns}})


def test_a_mapped_column_cannot_also_be_a_covariate():
    with pytest.raises(ConfigError, match="'store' is data.columns.series_id"):
        parse_config({"data": {"columns": STORE, "covariates": {"static": ["store"]}}})


# ------------------------------------------------------------------------- calendar anchors
def frame_of(dates: list, series: str = "a") -> pl.DataFrame:
    return pl.DataFrame(
        {
            SERIES_ID: series,
            TIMESTAMP: [datetime(d.year, d.month, d.day) for d in dates],
            VALUE: [10.0 + 3 * i + i % 4 for i in range(len(dates))],
        }  # fmt: skip
    )


CASES = {
    "month ends": ("1mo", month_ends(date(2021, 6, 30), 14)),
    "quarter ends": ("1q", month_ends(date(2019, 3, 31), 12, months=3)),
    "year ends": ("1y", month_ends(date(2010, 12, 31), 8, months=12)),
    "weeks ending Sunday": ("1w", [date(2021, 1, 3) + timedelta(weeks=i) for i in range(30)]),
    "15th of the month": ("1mo", [date(2021 + i // 12, i % 12 + 1, 15) for i in range(14)]),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("screened", [True, False])
def test_calendar_data_on_its_own_anchor_passes_screened_or_not(case, screened):
    frequency, dates = CASES[case]
    out = ingest(frame_of(dates), cfg(frequency=frequency), screened=screened)
    assert out.quarantined.height == 0
    assert out.frame[TIMESTAMP].dt.date().to_list() == dates


def test_a_day_of_month_series_on_the_30th_is_not_read_as_month_ends():
    # 03-30, 04-30 (a month end), 05-30: the grid of the 30th, every step on it.
    dates = [date(2021, m, 30) for m in (3, 4, 5, 6, 7, 8, 9)]
    for screened in (True, False):
        out = ingest(frame_of(dates), cfg(frequency="1mo"), screened=screened)
        assert out.quarantined.height == 0


def test_a_day_off_the_month_end_grid_is_reported_off_that_grid():
    dates = month_ends(date(2021, 6, 30), 14)
    dates[5] = dates[5] - timedelta(days=1)
    good = [frame_of(month_ends(date(2021, 6, 30), 14), f"g{i}") for i in range(10)]
    out = ingest(pl.concat([frame_of(dates), *good]), cfg(frequency="1mo"))
    bad = out.quarantined.filter(pl.col("check") == "on_grid")
    assert bad[SERIES_ID].to_list() == ["a"]
    assert bad[TIMESTAMP].dt.date().to_list() == [dates[5]]


def test_gaps_in_month_end_data_are_filled_on_month_ends():
    dates = month_ends(date(2021, 6, 30), 14)
    config = cfg(frequency="1mo", fill_gaps="interpolate", max_fill_fraction=0.2)
    out = ingest(frame_of(dates[:4] + dates[5:]), config)
    assert out.frame[TIMESTAMP].dt.date().to_list() == dates


@pytest.mark.parametrize(
    "frequency, history, expected",
    [
        ("1mo", month_ends(date(2021, 5, 31), 2), [date(2021, 7, 31), date(2021, 8, 31)]),
        ("1q", month_ends(date(2021, 3, 31), 2, 3), [date(2021, 9, 30), date(2021, 12, 31)]),
        ("1mo", [date(2021, 5, 15), date(2021, 6, 15)], [date(2021, 7, 15), date(2021, 8, 15)]),
        ("1w", [date(2021, 6, 20), date(2021, 6, 27)], [date(2021, 7, 4), date(2021, 7, 11)]),
        # The 30th, not month ends, though its last step (Jun 30) is one.
        ("1mo", [date(2021, 5, 30), date(2021, 6, 30)], [date(2021, 7, 30), date(2021, 8, 30)]),
    ],
)
def test_forecast_timestamps_keep_the_anchor(frequency, history, expected):
    from tasks import timegrid

    stamps = np.asarray(history, "datetime64[us]")
    month_end = timegrid.month_end_series(stamps, np.array([len(stamps)]))
    out = future_timestamps(stamps[-1:], 2, frequency, month_end)
    assert out.dt.date().to_list() == expected
    grid = horizon_grid(frame_of(history), 2, frequency)
    assert grid[TIMESTAMP].dt.date().to_list() == expected

"""tasks.ingest: reading sources, each kind of bad input, gap filling, the ingest stage edge."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

from flows.stages import __main__ as stages
from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, parse_config
from tasks.errors import DataSourceError, DataValidationError
from tasks.ingest import ingest, read_source, series_chunks, summarize, validate
from tasks.ingest.schema import FILLED

ROOT = Path(__file__).resolve().parents[3]
AIRPASSENGERS = ROOT / "data" / "raw" / "airpassengers.csv"

# lstm_history = lookback 2 + 2 * horizon 1 + validation_steps 1 = 5 steps; min_history is 1.
# transform log: these tests check the log's positive-values rule (the default, auto, takes
# zeros).
SMALL = {
    "prepare": {"lookback": 2, "validation_steps": 1, "transform": "log"},
    "forecast": {"horizon": 1},
}
# The tests' covariate column `promo`, declared (an undeclared column is refused).
PAST_PROMO = {"covariates": {"past": ["promo"]}}


def small_cfg(**sections: dict) -> Config:
    raw = {k: dict(v) for k, v in SMALL.items()}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw)


def monthly(series: str = "a", n: int = 8, start: int = 2000, first: float = 10.0) -> list[list]:
    """CSV rows [series_id, timestamp, value] of a regular monthly series."""
    return [
        [series, date(start + i // 12, i % 12 + 1, 1).isoformat(), str(first + 10 * i)]
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[list], header=(SERIES_ID, TIMESTAMP, VALUE)) -> Path:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def validation_error(tmp_path: Path, rows: list[list], cfg: Config) -> DataValidationError:
    frame = read_source(write_csv(tmp_path / "series.csv", rows))
    with pytest.raises(DataValidationError) as info:
        validate(frame, cfg)
    return info.value


def with_row(rows: list[list], index: int, **fields) -> list[list]:
    """Copy of `rows` with row `index` (0-based) changed; fields: series_id/timestamp/value."""
    rows = [list(r) for r in rows]
    names = {SERIES_ID: 0, TIMESTAMP: 1, VALUE: 2}
    for name, value in fields.items():
        rows[index][names[name]] = value
    return rows


# ------------------------------------------------------------------------- source errors
def test_missing_path(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist") as info:
        read_source(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value) and "data.path" in str(info.value)


def test_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(DataSourceError, match=r"holds no \.csv or \.parquet files") as info:
        read_source(tmp_path)
    assert "notes.txt" in str(info.value)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "series.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataSourceError, match=r"unsupported file type '\.xlsx'"):
        read_source(path)


def test_missing_required_column_names_it_and_lists_found(tmp_path):
    path = write_csv(tmp_path / "s.csv", [["a", "2000-01-01"]], header=(SERIES_ID, "date"))
    with pytest.raises(DataSourceError) as info:
        read_source(path)
    msg = str(info.value)
    assert "missing required column(s) timestamp, value" in msg
    assert "found columns: series_id, date" in msg


@pytest.mark.parametrize(
    ("name", "content"),
    [("broken.parquet", b"definitely not parquet"), ("empty.csv", b"")],
)
def test_unreadable_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataSourceError, match="cannot read this file") as info:
        read_source(tmp_path / name)
    assert name in str(info.value)


# ------------------------------------------------------------------------- validation errors
GOOD = monthly(n=8)

# (id, rows, config overrides, check, text in the failing row's line)
BAD_ROWS = [
    (
        "unparseable timestamp",
        with_row(GOOD, 2, timestamp="2000-13-01"),
        {},
        "timestamp_parse",
        "row 3: series_id=a value=30.0 (unparseable timestamp '2000-13-01')",
    ),
    (
        "non-numeric value",
        with_row(GOOD, 3, value="12abc"),
        {},
        "value_type",
        "row 4: series_id=a timestamp=2000-04-01 value=null (not a number: '12abc')",
    ),
    (
        "null value",
        with_row(GOOD, 4, value=None),
        {},
        "not_null",
        "row 5: series_id=a timestamp=2000-05-01 value=null",
    ),
    (
        "null series",
        with_row(GOOD, 4, series_id=None),
        {},
        "not_null",
        "row 5: timestamp=2000-05-01 value=50.0",
    ),
    (
        "nan",
        with_row(GOOD, 1, value="NaN"),
        {},
        "finite",
        "row 2: series_id=a timestamp=2000-02-01 value=nan",
    ),
    (
        "inf",
        with_row(GOOD, 6, value="inf"),
        {},
        "finite",
        "row 7: series_id=a timestamp=2000-07-01 value=inf",
    ),
    (
        "duplicate pair",
        with_row(GOOD, 5, timestamp="2000-05-01"),
        {},
        "unique_key",
        "row 6: series_id=a timestamp=2000-05-01 value=60.0",
    ),
    (
        "out of order",
        GOOD[:2] + [GOOD[3], GOOD[2]] + GOOD[4:],
        {},
        "increasing_time",
        "row 4: series_id=a timestamp=2000-03-01 value=30.0 (comes after 2000-04-01",
    ),
    (
        "off grid",
        with_row(GOOD, 1, timestamp="2000-02-15"),
        {},
        "on_grid",
        "row 2: series_id=a timestamp=2000-02-15 value=20.0",
    ),
    ("gap", GOOD[:3] + GOOD[4:], {}, "gap", "series_id=a timestamp=2000-04-01"),
    (
        "below min",
        with_row(GOOD, 2, value="-5"),
        {"prepare": {"transform": "none"}},
        "min_value",
        "row 3: series_id=a timestamp=2000-03-01 value=-5.0",
    ),
    (
        "above max",
        with_row(GOOD, 2, value="500"),
        {"data": {"max_value": 100}},
        "max_value",
        "row 3: series_id=a timestamp=2000-03-01 value=500.0",
    ),
    (
        "zero with log",
        with_row(GOOD, 0, value="0"),
        {},
        "positive_for_log",
        "row 1: series_id=a timestamp=2000-01-01 value=0.0",
    ),
]


@pytest.mark.parametrize(
    ("rows", "overrides", "check", "line"),
    [case[1:] for case in BAD_ROWS],
    ids=[case[0] for case in BAD_ROWS],
)
def test_bad_rows_are_reported_with_check_and_row(tmp_path, rows, overrides, check, line):
    err = validation_error(tmp_path, rows, small_cfg(**overrides))
    report = str(err)
    assert f"[{check}]" in report
    assert line in report
    assert "fix:" in report
    assert check in err.failures["check"].to_list()
    assert err.failures.columns[:5] == ["check", "column", SERIES_ID, TIMESTAMP, VALUE]


def test_gap_error_lists_every_missing_timestamp(tmp_path):
    err = validation_error(tmp_path, GOOD[:2] + GOOD[5:], small_cfg())
    gaps = err.failures.filter(pl.col("check") == "gap")
    assert gaps[TIMESTAMP].to_list() == [datetime(2000, m, 1) for m in (3, 4, 5)]
    assert "[gap] column timestamp: 3 failing" in str(err)
    assert "data.fill_gaps" in str(err)


def test_log_check_names_the_param(tmp_path):
    err = validation_error(tmp_path, with_row(GOOD, 0, value="0"), small_cfg())
    assert "prepare.transform" in str(err)
    assert "prepare.transform: none" in str(err)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_a_series_too_short_for_the_lstm_is_not_bad_data(tmp_path, n):
    """Shorter than the LSTM needs (5 steps here) is not broken: it passes ingest, and evaluate
    and publish forecast it with another candidate (tasks/evaluation/short.py)."""
    cfg = small_cfg(data={"on_bad_series": "fail"})
    assert n < cfg.lstm_history and cfg.min_history == 1
    result = ingest(read_source(write_csv(tmp_path / "s.csv", GOOD + monthly("b", n=n))), cfg)
    assert result.frame.filter(pl.col(SERIES_ID) == "b").height == n
    assert result.quarantined.height == 0


def test_default_params_take_a_short_series(tmp_path):
    frame = read_source(write_csv(tmp_path / "s.csv", monthly(n=60) + monthly("b", n=3)))
    assert validate(frame, Config()).height == 63


def test_all_failures_are_reported_at_once(tmp_path):
    rows = with_row(with_row(GOOD, 1, value="abc"), 4, timestamp="2000-05-20")
    nan = with_row(monthly("b", n=3), 1, value="NaN")
    err = validation_error(tmp_path, rows + nan, small_cfg())
    checks = set(err.failures["check"].to_list())
    assert {"value_type", "on_grid", "finite"} <= checks
    bad = err.failures.filter(pl.col("check") == "finite")
    assert bad[SERIES_ID].to_list() == ["b"]


def test_long_failure_lists_are_truncated(tmp_path):
    rows = [[s, t, "-1"] for s, t, _ in monthly(n=30)]
    err = validation_error(tmp_path, rows, small_cfg(prepare={"transform": "none"}))
    report = str(err)
    assert "[min_value] column value: 30 failing" in report
    assert "... and 10 more" in report
    assert err.failures.filter(pl.col("check") == "min_value").height == 30


def test_empty_source_fails_non_empty(tmp_path):
    err = validation_error(tmp_path, [], small_cfg())
    report = str(err)
    assert "[non_empty]" in report
    assert "the source holds no data rows" in report
    assert "fix: point data.path at a file with rows" in report
    assert err.failures["check"].to_list() == ["non_empty"]


@pytest.mark.parametrize(("bad", "row"), [("inf", 4), ("NaN", 6), ("", 2)])
def test_non_finite_or_empty_covariate_fails_covariate_finite(tmp_path, bad, row):
    rows = [r + [str(i)] for i, r in enumerate(GOOD)]
    rows[row - 1][3] = bad
    path = write_csv(tmp_path / "s.csv", rows, header=(SERIES_ID, TIMESTAMP, VALUE, "promo"))
    with pytest.raises(DataValidationError) as info:
        validate(read_source(path), small_cfg(data=PAST_PROMO))
    report = str(info.value)
    assert "[covariate_finite] column promo: 1 failing" in report
    assert f"row {row}: series_id=a" in report
    assert info.value.failures["check"].to_list() == ["covariate_finite"]


def test_non_numeric_covariate(tmp_path):
    rows = [r + ["x"] for r in GOOD]
    path = write_csv(tmp_path / "s.csv", rows, header=(SERIES_ID, TIMESTAMP, VALUE, "promo"))
    with pytest.raises(DataSourceError, match=r"past column\(s\) promo are not numeric"):
        validate(read_source(path), small_cfg(data=PAST_PROMO))


def test_frame_with_wrong_value_dtype_is_reported_not_crashed():
    frame = pl.DataFrame(
        {
            SERIES_ID: ["a"] * 6,
            TIMESTAMP: [date(2000, m, 1) for m in range(1, 7)],
            VALUE: [True] * 6,
        }
    )
    with pytest.raises(DataValidationError, match=r"\[dtype\] column value"):
        validate(frame, small_cfg())


# ------------------------------------------------------------------------- good input
def test_airpassengers_validates_to_144_rows():
    frame = validate(read_source(AIRPASSENGERS), Config())
    assert frame.height == 144
    assert frame.columns == [SERIES_ID, TIMESTAMP, VALUE, FILLED]
    assert frame.schema[VALUE] == pl.Float64
    assert frame.schema[TIMESTAMP] == pl.Datetime("us")
    summary = summarize(frame)
    assert summary == {
        "rows": 144,
        "series": 1,
        "first_timestamp": "1949-01-01T00:00:00",
        "last_timestamp": "1960-12-01T00:00:00",
        "min_series_length": 144,
        "max_series_length": 144,
        "filled_gaps": 0,
        "covariates": [],
    }
    json.dumps(summary)


@pytest.mark.parametrize(
    ("method", "expected"),
    [("forward", [10.0, 20.0, 20.0, 20.0, 50.0]), ("interpolate", [10.0, 20.0, 30.0, 40.0, 50.0])],
)
def test_gaps_are_filled(tmp_path, method, expected):
    rows = monthly(n=8)
    rows = rows[:2] + rows[4:]  # 2000-03 and 2000-04 missing
    path = write_csv(tmp_path / "s.csv", rows)
    frame = validate(
        read_source(path), small_cfg(data={"fill_gaps": method, "max_fill_fraction": 0.5})
    )
    assert frame.height == 8
    assert frame[VALUE].head(5).to_list() == expected
    assert frame[FILLED].to_list() == [False, False, True, True] + [False] * 4
    assert summarize(frame)["filled_gaps"] == 2


def test_filled_covariates_follow_the_method(tmp_path):
    rows = [r + [i] for i, r in enumerate(GOOD) if i != 2]
    path = write_csv(tmp_path / "s.csv", rows, header=(SERIES_ID, TIMESTAMP, VALUE, "promo"))
    frame = validate(
        read_source(path),
        small_cfg(data={"fill_gaps": "interpolate", "max_fill_fraction": 0.5, **PAST_PROMO}),
    )
    assert frame["promo"].to_list()[:4] == [0, 1, 2, 3]


def test_multiple_series_and_a_covariate_pass(tmp_path):
    rows = [r + [i % 2] for i, r in enumerate(monthly("b", n=6, start=2001) + monthly("a", n=9))]
    path = write_csv(tmp_path / "s.csv", rows, header=(SERIES_ID, TIMESTAMP, VALUE, "promo"))
    frame = validate(read_source(path), small_cfg(data=PAST_PROMO))
    assert frame.columns == [SERIES_ID, TIMESTAMP, VALUE, "promo", FILLED]
    assert frame[SERIES_ID].to_list() == ["a"] * 9 + ["b"] * 6  # sorted by (series, time)
    assert frame.filter(pl.col(SERIES_ID) == "b")[TIMESTAMP][0] == datetime(2001, 1, 1)
    summary = summarize(frame)
    lengths = (summary["min_series_length"], summary["max_series_length"])
    assert (summary["series"], lengths) == (2, (6, 9))
    assert summary["covariates"] == ["promo"]


def test_directory_of_csvs_and_parquet_reads_like_one_file(tmp_path):
    rows = monthly("a", n=7) + monthly("b", n=6)
    single = write_csv(tmp_path / "all.csv", rows)
    parts = tmp_path / "parts"
    parts.mkdir()
    write_csv(parts / "1.csv", rows[:4])
    write_csv(parts / "2.csv", rows[4:9])  # series a ends and b starts in this file
    read_source(write_csv(tmp_path / "rest.csv", rows[9:])).select(
        SERIES_ID, TIMESTAMP, VALUE
    ).write_parquet(parts / "3.parquet")
    (parts / "README.md").write_text("ignored")
    cfg = small_cfg()
    from_dir, from_file = read_source(parts), read_source(single)
    assert from_dir.select(SERIES_ID, TIMESTAMP, VALUE).equals(
        from_file.select(SERIES_ID, TIMESTAMP, VALUE)
    )
    assert validate(from_dir, cfg).equals(validate(from_file, cfg))


def test_directory_files_are_read_in_name_order(tmp_path):
    rows = monthly(n=6)
    write_csv(tmp_path / "b.csv", rows[3:])
    write_csv(tmp_path / "a.csv", rows[:3])
    assert read_source(tmp_path)[VALUE].to_list() == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]


def test_row_numbers_point_into_the_right_file(tmp_path):
    rows = monthly(n=6)
    write_csv(tmp_path / "a.csv", rows[:3])
    write_csv(tmp_path / "b.csv", with_row(rows[3:], 1, value="oops"))
    with pytest.raises(DataValidationError) as info:
        validate(read_source(tmp_path), small_cfg())
    assert "b.csv row 2: series_id=a timestamp=2000-05-01" in str(info.value)
    assert info.value.failures.row(0, named=True)["source"].endswith("b.csv")


def test_iso_datetimes_parse(tmp_path):
    naive = ["2000-01-01", "2000-01-02T00:00:00", "2000-01-03 00:00", "2000-01-04", "2000-01-05"]
    aware = [
        "2000-01-01T01:00:00+01:00",
        "2000-01-02T00:00:00.000Z",
        "2000-01-02 19:00:00-05:00",
        "2000-01-04T00:00:00+0000",
        "2000-01-05T05:30:00+05:30",
    ]
    for name, stamps in (("naive", naive), ("aware", aware)):
        rows = [["a", ts, str(i + 1)] for i, ts in enumerate(stamps)]  # not constant
        frame = read_source(write_csv(tmp_path / f"{name}.csv", rows))
        assert frame.schema[TIMESTAMP] == pl.Datetime("us")
        assert frame[TIMESTAMP].to_list() == [datetime(2000, 1, d) for d in range(1, 6)], name
        validate(frame, small_cfg(data={"frequency": "1d"}))


def test_offsets_are_converted_to_data_timezone_and_must_land_on_the_grid(tmp_path):
    """Monthly data stamped at local midnight +05:00: in UTC they are 19:00 the day before, off
    a monthly grid; with data.timezone at +05:00 they are the calendar months they mean."""
    rows = [["a", f"{d}T00:00:00+05:00", v] for d, v in ((r[1], r[2]) for r in monthly(n=8))]
    path = write_csv(tmp_path / "s.csv", rows)
    in_utc = read_source(path)
    assert in_utc[TIMESTAMP][0] == datetime(1999, 12, 31, 19)
    with pytest.raises(DataValidationError, match=r"(?s)\[calendar_time\].*time of day 19:00"):
        validate(in_utc, small_cfg())
    local = read_source(path, timezone="Asia/Karachi")  # UTC+05:00, no DST
    assert local[TIMESTAMP].to_list()[:2] == [datetime(2000, 1, 1), datetime(2000, 2, 1)]
    assert validate(local, small_cfg(data={"timezone": "Asia/Karachi"})).height == 8


def test_naive_and_offset_timestamps_in_one_source_are_refused(tmp_path):
    rows = [["a", "2000-01-01T00:00:00+05:00", "1"], ["a", "2000-02-01", "2"]]
    with pytest.raises(DataSourceError, match=r"mix UTC offsets \(\+05:00; 1 rows, first row 1\)"
                       r" with naive ones \(1 rows, first row 2\)"):  # fmt: skip
        read_source(write_csv(tmp_path / "s.csv", rows))


def test_an_unknown_timezone_is_a_config_error():
    from tasks.errors import ConfigError

    with pytest.raises(ConfigError, match="data.timezone: unknown time zone 'Mars/Olympus'"):
        small_cfg(data={"timezone": "Mars/Olympus"})


def test_validate_accepts_a_plain_frame():
    frame = pl.DataFrame(
        {
            SERIES_ID: ["a"] * 6,
            TIMESTAMP: [date(2000, m, 1) for m in range(6, 0, -1)],
            VALUE: [6, 5, 4, 3, 2, 1],
        }
    )
    with pytest.raises(DataValidationError, match=r"<frame> row 2: series_id=a timestamp=2000-05"):
        validate(frame, small_cfg())
    ok = validate(frame.reverse(), small_cfg())
    assert ok[VALUE].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


# ------------------------------------------------------------------------- chunked checks
def _mixed_series(n_series: int = 12) -> list[list]:
    """Series of different lengths, not in name order, so chunks end mid-alphabet."""
    rows = []
    for k in reversed(range(n_series)):
        rows += monthly(f"s{k:02d}", n=6 + k % 4, start=2000 + k % 3, first=5.0 + k)
    return rows


def _failure_keys(err: DataValidationError) -> set[tuple]:
    f = err.failures
    return set(f.select("check", SERIES_ID, TIMESTAMP, "row", "detail").iter_rows())


@pytest.mark.parametrize("fill", ["error", "forward"])
def test_chunked_validation_returns_what_one_pass_returns(tmp_path, fill):
    rows = _mixed_series()
    if fill == "forward":
        del rows[3], rows[20]  # gaps in two series
    frame = read_source(write_csv(tmp_path / "s.csv", rows))
    cfg = small_cfg(data={"fill_gaps": fill, "max_fill_fraction": 0.5})
    whole = validate(frame, cfg, chunk_rows=10_000)
    for chunk_rows in (1, 7, 20):
        chunked = validate(frame, cfg, chunk_rows=chunk_rows)
        assert chunked.equals(whole), chunk_rows
    assert whole[SERIES_ID].is_sorted()
    assert whole[FILLED].sum() == (2 if fill == "forward" else 0)


def test_chunks_hold_whole_series_and_share_the_data(tmp_path):
    frame = read_source(write_csv(tmp_path / "s.csv", _mixed_series()))
    chunks = series_chunks(frame, chunk_rows=20)
    assert 3 <= len(chunks) < frame.height / 6
    assert sum(c.height for c in chunks) == frame.height
    seen = [set(c[SERIES_ID].to_list()) for c in chunks]
    for i, a in enumerate(seen):  # no series is cut between two chunks
        assert all(a.isdisjoint(b) for b in seen[i + 1 :])
    assert pl.concat(chunks).equals(frame)


def test_chunked_validation_reports_the_same_failures(tmp_path):
    rows = _mixed_series()
    rows = with_row(rows, 2, value="x")  # value_type, in the first series
    rows = with_row(rows, 40, timestamp=rows[39][1])  # unique_key + order, mid-file
    rows = with_row(rows, len(rows) - 1, value="-3")  # below min_value, in the last series
    del rows[60]  # a gap
    frame = read_source(write_csv(tmp_path / "s.csv", rows))
    cfg = small_cfg(data={"min_value": 0.0})
    errors = []
    for chunk_rows in (10_000, 15):
        with pytest.raises(DataValidationError) as info:
            validate(frame, cfg, chunk_rows=chunk_rows)
        errors.append(info.value)
    whole, chunked = errors
    assert _failure_keys(chunked) == _failure_keys(whole)
    assert {"value_type", "unique_key", "min_value", "gap"} <= set(whole.failures["check"])


def test_interleaved_series_are_checked_in_one_piece(tmp_path):
    # a and b alternate row by row: no cut between whole series exists, so no chunking; a
    # duplicate key far apart in the file is still found.
    a, b = monthly("a", n=10), monthly("b", n=10)
    rows = [r for pair in zip(a, b, strict=True) for r in pair] + [list(a[0])]
    frame = read_source(write_csv(tmp_path / "s.csv", rows))
    assert len(series_chunks(frame, chunk_rows=4)) == 1
    with pytest.raises(DataValidationError) as info:
        validate(frame, small_cfg(), chunk_rows=4)
    assert "unique_key" in set(info.value.failures["check"])


# ------------------------------------------------------------------------- the stage edge
@pytest.fixture
def stage_dir(tmp_path, monkeypatch):
    """A project-like cwd: params.yaml from the defaults with short-series-friendly params."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORECAST_PREFECT", "never")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return tmp_path


def write_params(path: Path, data_path: str) -> None:
    params = Config().model_dump(mode="json")
    params["data"]["path"] = data_path
    path.write_text(yaml.safe_dump(params, sort_keys=False))


COVARIATE = (SERIES_ID, TIMESTAMP, VALUE, "promo")


def _with_covariate(bad: str, row: int) -> list[list]:
    rows = [r + [str(i)] for i, r in enumerate(GOOD)]
    rows[row][3] = bad
    return rows


# Every kind of bad input at the stage edge: (id, rows, header, config overrides, check).
STAGE_CASES = [
    *((case[0], case[1], (SERIES_ID, TIMESTAMP, VALUE), case[2], case[3]) for case in BAD_ROWS),
    ("empty", [], (SERIES_ID, TIMESTAMP, VALUE), {}, "non_empty"),
    ("covariate inf", _with_covariate("inf", 3), COVARIATE, {"data": PAST_PROMO},
     "covariate_finite"),
    ("covariate text", _with_covariate("x", 3), COVARIATE, {"data": PAST_PROMO}, "not numeric"),
    ("covariate undeclared", _with_covariate("1", 3), COVARIATE, {}, "not declared"),
    ("missing column", [r[:2] for r in GOOD], (SERIES_ID, TIMESTAMP), {}, "value"),
    ("too large to scale", with_row(GOOD, 3, value="1e308"), (SERIES_ID, TIMESTAMP, VALUE),
     {"prepare": {"transform": "none"}}, "scalable"),
    ("mostly invented", GOOD, (SERIES_ID, TIMESTAMP, VALUE),
     {"data": {"frequency": "1d", "fill_gaps": "forward"}}, "max_fill"),
    ("shifted by an offset", [[s, f"{t}T00:00:00+05:00", v] for s, t, v in GOOD],
     (SERIES_ID, TIMESTAMP, VALUE), {}, "calendar_time"),
    ("naive and offset mixed", with_row(GOOD, 0, timestamp="2000-01-01T00:00:00+05:00"),
     (SERIES_ID, TIMESTAMP, VALUE), {}, "mix UTC offsets"),
]  # fmt: skip


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("rows", "header", "overrides", "check"),
    [case[1:] for case in STAGE_CASES],
    ids=[case[0] for case in STAGE_CASES],
)
def test_bad_data_changes_nothing(stage_dir, capsys, rows, header, overrides, check):
    """Each bad-input kind fails the ingest stage with exit 2 and the failed check named, and
    every file of the project (the earlier outputs of every stage included) is byte-identical:
    sha256 of each file before and after, and no file added or removed."""
    write_csv(stage_dir / "bad.csv", rows, header=header)
    params = small_cfg(**overrides).model_dump(mode="json")
    params["data"]["path"] = "bad.csv"
    (stage_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    earlier = {
        "data/validated/series.parquet": b"old validated bytes",
        "metrics/ingest.json": b'{"rows": 1}',
        "data/prepared/arrays.npz": b"old arrays",
        "models/model.keras": b"old model",
        "published/forecasts.sqlite": b"old store",
        "published/forecasts.parquet": b"old forecasts",
    }
    for rel, payload in earlier.items():
        (stage_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage_dir / rel).write_bytes(payload)
    before = _sha256_tree(stage_dir)

    assert stages.main(["ingest"]) == 2

    err = capsys.readouterr().err
    assert "ingest failed" in err
    assert check in err
    assert _sha256_tree(stage_dir) == before


def test_good_run_writes_validated_data_and_metrics(stage_dir):
    (stage_dir / "raw.csv").write_bytes(AIRPASSENGERS.read_bytes())
    write_params(stage_dir / "params.yaml", "raw.csv")

    assert stages.main(["ingest"]) == 0

    frame = pl.read_parquet(stage_dir / "data" / "validated" / "series.parquet")
    assert frame.height == 144
    assert not [c for c in frame.columns if c.startswith("_")]
    metrics = json.loads((stage_dir / "metrics" / "ingest.json").read_text())
    assert metrics["rows"] == 144 and metrics["series"] == 1
    assert metrics["quarantined"] == {
        "series": 0,
        "of_series": 1,
        "fraction": 0.0,
        "listed": [],
        "truncated": False,
    }
    quarantined = pl.read_parquet(stage_dir / "data" / "validated" / "quarantined.parquet")
    assert quarantined.height == 0 and quarantined.columns == [SERIES_ID, "checks", "failures",
                                                               "rows"]  # fmt: skip


def test_a_huge_series_id_and_raw_value_are_clipped_in_the_report(tmp_path):
    """A 5 MB series id (and a 1 MB unparsable value) must not be echoed whole: the report is
    what the logs, the state message and the failure event carry."""
    huge_id = "s" * 5_000_000
    rows = with_row(monthly(huge_id, n=8), 2, value="x" * 1_000_000)
    err = validation_error(tmp_path, rows, small_cfg())
    report = str(err)
    assert "[value_type]" in report
    assert f"series_id={'s' * 80}... (+{5_000_000 - 80} chars)" in report
    assert "x" * 201 not in report and "x" * 100 in report  # the raw text, clipped
    assert len(report) < 5_000


def test_values_too_large_to_scale_are_rejected_at_ingest(tmp_path):
    rows = with_row(monthly(n=8), 3, value="1e308")
    err = validation_error(tmp_path, rows, small_cfg(prepare={"transform": "none"}))
    report = str(err)
    assert "[scalable] column value: 1 failing - values too large to scale" in report
    assert "row 4: series_id=a timestamp=2000-04-01 value=1e+308" in report
    assert "set prepare.transform: log" in report
    # After a log the same value is small (709.8): accepted.
    frame = read_source(write_csv(tmp_path / "ok.csv", rows))
    assert validate(frame, small_cfg()).height == 8


def test_monthly_data_read_as_daily_is_not_invented_by_gap_filling(tmp_path):
    """data.frequency 1d with forward filling on monthly data would fill ~97 % of the rows."""
    rows = monthly(n=12)
    cfg = small_cfg(data={"frequency": "1d", "fill_gaps": "forward"})
    err = validation_error(tmp_path, rows, cfg)
    report = str(err)
    assert "[max_fill] column series_id: 1 failing" in report
    assert "gap filling would invent 324 of its 336 steps" in report
    assert "the median step between its rows is 31.0 days (data.frequency: 1d)" in report
    assert "check data.frequency against the median step shown" in report
    # A few gaps within the allowance are still filled.
    few = [r for i, r in enumerate(monthly(n=40)) if i != 20]
    frame = validate(read_source(write_csv(tmp_path / "few.csv", few)), small_cfg(
        data={"fill_gaps": "forward"}))  # fmt: skip
    assert frame[FILLED].sum() == 1


# ------------------------------------------------------------------------- quarantine
PROMO = (SERIES_ID, TIMESTAMP, VALUE, "promo")


def promo_rows(rows: list[list]) -> list[list]:
    """`rows` with a covariate column (a finite number per row)."""
    return [list(r) + [str(i)] for i, r in enumerate(rows)]


def good_series(n_series: int = 3) -> list[list]:
    return [r for k in range(n_series) for r in monthly(f"g{k}", n=8, first=5.0 + k)]


def _bad(**fields) -> list[list]:
    rows = promo_rows(monthly("bad", n=8))
    names = {SERIES_ID: 0, TIMESTAMP: 1, VALUE: 2, "promo": 3}
    for name, (index, value) in fields.items():
        rows[index][names[name]] = value
    return rows


_BAD_MONTHLY = promo_rows(monthly("bad", n=10))

# Every series-level problem: (id, the bad series' rows, config overrides, the check named).
BAD_SERIES = [
    ("gap", _BAD_MONTHLY[:3] + _BAD_MONTHLY[4:], {}, "gap"),
    ("gaps beyond max_fill_fraction", _BAD_MONTHLY[:3] + _BAD_MONTHLY[5:],
     {"data": {"fill_gaps": "forward", "max_fill_fraction": 0.1}}, "max_fill"),
    ("nan", _bad(value=(2, "NaN")), {}, "finite"),
    ("inf", _bad(value=(5, "inf")), {}, "finite"),
    ("below min_value", _bad(value=(2, "-5")), {"prepare": {"transform": "none"}}, "min_value"),
    ("above max_value", _bad(value=(2, "5000")), {"data": {"max_value": 1000.0}}, "max_value"),
    ("zero with log", _bad(value=(0, "0")), {}, "positive_for_log"),
    ("too large to scale", _bad(value=(3, "1e308")), {"prepare": {"transform": "none"}},
     "scalable"),
    ("constant training part", [[s, t, "7", p] for s, t, _, p in _bad()], {}, "constant"),
    ("out of order", [*_bad()[:2], _bad()[3], _bad()[2], *_bad()[4:]], {}, "increasing_time"),
    ("off its grid", _bad(timestamp=(1, "2000-02-15")), {}, "on_grid"),
    ("time of day on monthly data", _bad(timestamp=(1, "2000-02-01T10:00:00")), {},
     "calendar_time"),
    ("unparseable timestamp", _bad(timestamp=(2, "2000-13-01")), {}, "timestamp_parse"),
    ("not a number", _bad(value=(3, "12abc")), {}, "value_type"),
    ("empty value", _bad(value=(4, None)), {}, "not_null"),
    ("empty timestamp", _bad(timestamp=(4, None)), {}, "not_null"),
    ("covariate inf", _bad(promo=(3, "inf")), {}, "covariate_finite"),
]  # fmt: skip


def _source(tmp_path: Path, rows: list[list], name: str = "s.csv") -> pl.DataFrame:
    return read_source(write_csv(tmp_path / name, rows, header=PROMO))


def _skip_cfg(overrides: dict, fraction: float = 0.5) -> Config:
    data = {"on_bad_series": "skip", "max_bad_series_fraction": fraction, **PAST_PROMO}
    return small_cfg(**{**overrides, "data": {**data, **overrides.get("data", {})}})


@pytest.mark.parametrize(
    ("bad", "overrides", "check"),
    [case[1:] for case in BAD_SERIES],
    ids=[case[0] for case in BAD_SERIES],
)
def test_a_bad_series_is_quarantined_and_the_rest_go_on(tmp_path, bad, overrides, check):
    good = promo_rows(good_series(3))
    cfg = _skip_cfg(overrides)
    result = ingest(_source(tmp_path, good[:8] + bad + good[8:]), cfg)
    # The good series come out exactly as they do from a source without the bad one.
    assert result.frame.equals(validate(_source(tmp_path, good, "good.csv"), cfg))
    assert result.series == 4
    assert set(result.quarantined[SERIES_ID]) == {"bad"}
    assert check in set(result.quarantined["check"])
    listing = result.listing(cfg)
    assert (listing["series"], listing["of_series"], listing["fraction"]) == (1, 4, 0.25)
    [entry] = listing["listed"]
    assert entry[SERIES_ID] == "bad" and entry["rows"] == len(bad)
    assert check in [r["check"] for r in entry["reasons"]]
    assert all(r["what"] for r in entry["reasons"])
    assert 1 <= len(entry["sample"]) <= 5
    json.dumps(listing)  # metrics/ingest.json takes it as it is


@pytest.mark.parametrize(
    ("bad", "overrides", "check"),
    [case[1:] for case in BAD_SERIES],
    ids=[case[0] for case in BAD_SERIES],
)
def test_a_bad_series_alone_still_fails(tmp_path, bad, overrides, check):
    with pytest.raises(DataValidationError) as info:
        ingest(_source(tmp_path, bad), _skip_cfg(overrides))
    report = str(info.value)
    assert f"[{check}]" in report
    assert "every series (1) failed its checks: no series left" in report


def test_every_kind_of_bad_series_at_once_with_good_ones(tmp_path):
    """One series per problem kind (under the params each needs, where they agree) beside
    good series: each bad one quarantined for its own check, the good ones kept."""
    rows, expected = promo_rows(good_series(4)), {}
    for name, bad, overrides, check in BAD_SERIES:
        if overrides or check == "gap":  # the params of the other cases: their own source
            continue
        sid = name.replace(" ", "_")
        rows += [[sid, *r[1:]] for r in bad]
        expected[sid] = check
    cfg = _skip_cfg({}, fraction=1.0)
    result = ingest(_source(tmp_path, rows), cfg)
    assert set(result.frame[SERIES_ID]) == {"g0", "g1", "g2", "g3"}
    assert result.frame.height == 4 * 8
    found = result.quarantined.group_by(SERIES_ID).agg(pl.col("check").unique())
    checks = {sid: set(c) for sid, c in found.iter_rows()}
    assert set(checks) == set(expected)
    for sid, check in expected.items():
        assert check in checks[sid], (sid, checks[sid])
    assert len(expected) >= 12


def _with_bad(n_good: int, n_bad: int) -> list[list]:
    rows = promo_rows(good_series(n_good))
    for k in range(n_bad):
        rows += promo_rows(with_row(monthly(f"bad{k}", n=3), 1, value="NaN"))
    return rows


@pytest.mark.parametrize(
    ("n_good", "n_bad", "fraction", "passes"),
    [(9, 1, 0.1, True), (8, 2, 0.1, False), (8, 2, 0.2, True), (3, 1, 0.0, False)],
)
def test_more_bad_series_than_max_bad_series_fraction_fail_the_run(
    tmp_path, n_good, n_bad, fraction, passes
):
    frame, cfg = _source(tmp_path, _with_bad(n_good, n_bad)), _skip_cfg({}, fraction)
    if passes:
        result = ingest(frame, cfg)
        assert result.frame[SERIES_ID].n_unique() == n_good
        assert result.quarantined[SERIES_ID].n_unique() == n_bad
        return
    with pytest.raises(DataValidationError) as info:
        ingest(frame, cfg)
    report = str(info.value)
    share = f"{n_bad / (n_good + n_bad):.1%}"
    assert f"{n_bad} of {n_good + n_bad} series ({share}) failed their checks" in report
    assert f"more than data.max_bad_series_fraction = {fraction}" in report
    assert f"[finite] column value: {n_bad} failing" in report


@pytest.mark.parametrize(
    ("bad", "overrides", "check"),
    [case[1:] for case in BAD_SERIES],
    ids=[case[0] for case in BAD_SERIES],
)
def test_fail_mode_stops_on_any_bad_series(tmp_path, bad, overrides, check):
    """data.on_bad_series = fail: today's behaviour, every failure stops the run."""
    good = promo_rows(good_series(3))
    data = {**overrides.get("data", {}), "on_bad_series": "fail", **PAST_PROMO}
    cfg = small_cfg(**{**overrides, "data": data})
    with pytest.raises(DataValidationError) as info:
        ingest(_source(tmp_path, good + bad), cfg)
    assert f"[{check}]" in str(info.value)
    assert "data.on_bad_series = fail" in str(info.value)
    assert set(info.value.failures.filter(pl.col("check") == check)[SERIES_ID]) == {"bad"}


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (lambda rows: [*rows, list(rows[2])], "unique_key"),  # a duplicate (series, timestamp)
        (lambda rows: with_row(rows, 3, series_id=None), "not_null"),  # a row of no series
    ],
    ids=["duplicate key", "null series_id"],
)
def test_problems_of_the_source_fail_even_when_skipping(tmp_path, edit, check):
    rows = edit(promo_rows(good_series(9)))
    with pytest.raises(DataValidationError) as info:
        ingest(_source(tmp_path, rows), _skip_cfg({}, fraction=1.0))
    assert f"[{check}]" in str(info.value)
    assert "failed for the source as a whole" in str(info.value)


def test_the_listing_is_bounded(tmp_path):
    from tasks.ingest import quarantine

    huge = "q" * 100_000
    rows = promo_rows(good_series(1))
    rows += promo_rows([[huge, t, str(-1 - i)] for i, (_, t, _) in enumerate(monthly(n=30))])
    for k in range(quarantine.MAX_SERIES_LISTED + 5):
        # a gap (a series-level check, listed after the row checks of the long-named series)
        rows += promo_rows(monthly(f"gap{k:03d}", n=3)[::2])
    cfg = _skip_cfg({"prepare": {"transform": "none"}}, fraction=1.0)
    listing = ingest(_source(tmp_path, rows), cfg).listing(cfg)
    assert listing["series"] == quarantine.MAX_SERIES_LISTED + 6
    assert len(listing["listed"]) == quarantine.MAX_SERIES_LISTED and listing["truncated"]
    first = listing["listed"][0]
    assert first[SERIES_ID] == f"{'q' * 80}... (+{100_000 - 80} chars)"
    assert first["failures"] == 30 and len(first["sample"]) == quarantine.MAX_SAMPLE_ROWS
    assert first["reasons"] == [
        {"check": "min_value", "failing": 30, "what": "values below data.min_value = 0.0"}
    ]
    assert len(json.dumps(listing)) < 200_000


def test_stage_writes_the_good_series_and_lists_the_quarantined(stage_dir):
    from flows.ingest_artifact import quarantine_rows

    rows = promo_rows(good_series(9)) + _bad(value=(2, "-5"))
    write_csv(stage_dir / "raw.csv", rows, header=PROMO)
    params = _skip_cfg({}, fraction=0.1).model_dump(mode="json")
    params["data"]["path"] = "raw.csv"
    (stage_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    assert stages.main(["ingest"]) == 0

    frame = pl.read_parquet(stage_dir / "data" / "validated" / "series.parquet")
    assert sorted(set(frame[SERIES_ID])) == [f"g{k}" for k in range(9)]
    metrics = json.loads((stage_dir / "metrics" / "ingest.json").read_text())
    assert metrics["series"] == 9 and metrics["rows"] == 72
    q = metrics["quarantined"]
    assert (q["series"], q["of_series"], q["truncated"]) == (1, 10, False)
    [entry] = q["listed"]
    assert entry["reasons"][0]["check"] == "min_value"
    assert entry["sample"][0] | {"source": None} == {
        "source": None,
        "row": 75,  # 72 good rows, then the bad series' third
        TIMESTAMP: "2000-03-01T00:00:00",
        VALUE: -5.0,
        "check": "min_value",
        "detail": None,
    }
    table = pl.read_parquet(stage_dir / "data" / "validated" / "quarantined.parquet")
    assert table.to_dicts() == [
        {SERIES_ID: "bad", "checks": "min_value, positive_for_log", "failures": 2, "rows": 8}
    ]
    [row] = quarantine_rows(metrics)
    assert row[SERIES_ID] == "bad" and row["rows"] == 8
    assert row["reasons"].startswith("min_value (1): values below data.min_value = 0.0")
    assert row["first failure"].endswith("raw.csv row 75: 2000-03-01T00:00:00")


def test_stage_in_fail_mode_writes_nothing(stage_dir, capsys):
    rows = promo_rows(good_series(9)) + _bad(value=(2, "-5"))
    write_csv(stage_dir / "raw.csv", rows, header=PROMO)
    params = small_cfg(data={"on_bad_series": "fail", **PAST_PROMO}).model_dump(mode="json")
    params["data"]["path"] = "raw.csv"
    (stage_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = _sha256_tree(stage_dir)

    assert stages.main(["ingest"]) == 2

    assert "[min_value]" in capsys.readouterr().err
    assert _sha256_tree(stage_dir) == before


# ------------------------------------------------------------------------- the screen
def _outcome(frame: pl.DataFrame, cfg: Config, screened: bool):
    """What ingest makes of `frame`: the result's parts, or the failures and report."""
    try:
        r = ingest(frame, cfg, screened=screened)
    except DataValidationError as err:
        return "failed", str(err), err.failures.sort(pl.all(), nulls_last=True)
    q = r.quarantined.sort(pl.all(), nulls_last=True)
    return r.frame, q, r.quarantined_rows.sort(SERIES_ID), r.series


def _assert_same_outcome(frame: pl.DataFrame, cfg: Config) -> None:
    screened, full = _outcome(frame, cfg, True), _outcome(frame, cfg, False)
    assert len(screened) == len(full)
    for a, b in zip(screened, full, strict=True):
        assert a.equals(b) if isinstance(a, pl.DataFrame) else a == b


@pytest.mark.parametrize(
    ("bad", "overrides", "check"),
    [case[1:] for case in BAD_SERIES],
    ids=[case[0] for case in BAD_SERIES],
)
def test_the_screen_changes_nothing_but_the_work(tmp_path, bad, overrides, check):
    """The screen vouches for clean series so that the detailed checks skip them: with or
    without it, the same frame, the same quarantine, the same failures and report."""
    good = promo_rows(good_series(3))
    frame = _source(tmp_path, good[:8] + bad + good[8:])
    for on_bad in ("skip", "fail"):
        _assert_same_outcome(frame, _skip_cfg({**overrides, "data": {
            **overrides.get("data", {}), "on_bad_series": on_bad}}))  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["series out of name order", "month-end grid", "gaps filled", "interleaved", "weekly",
     "hourly with a gap", "duplicate", "quarterly"],
)  # fmt: skip
def test_the_screen_agrees_on_every_shape_of_source(tmp_path, case):
    cfg = small_cfg(data={"max_bad_series_fraction": 0.5})
    rows = _mixed_series()
    if case == "month-end grid":  # Jan 31, Feb 29, Mar 31, ...: calendar clamping
        ends = pl.date_range(date(2000, 1, 31), date(2000, 12, 31), "1mo", eager=True)
        rows = [["e", d.isoformat(), str(10 + i)] for i, d in enumerate(ends)] + rows
    elif case == "gaps filled":
        del rows[3], rows[20]
        cfg = small_cfg(data={"fill_gaps": "interpolate", "max_fill_fraction": 0.5})
    elif case == "interleaved":
        a, b = monthly("a", n=10), monthly("b", n=10, first=3.0)
        rows = [r for pair in zip(a, b, strict=True) for r in pair]
    elif case in ("weekly", "hourly with a gap"):
        step = timedelta(weeks=1) if case == "weekly" else timedelta(hours=1)
        rows = [[f"w{k}", (datetime(2001, 1, 1) + i * step).isoformat(), str(i * (k + 1) + 1)]
                for k in range(3) for i in range(9)]  # fmt: skip
        if case == "hourly with a gap":
            del rows[4]
        cfg = small_cfg(data={"frequency": "1w" if case == "weekly" else "1h",
                              "max_bad_series_fraction": 0.5})  # fmt: skip
    elif case == "duplicate":
        rows = [*rows, list(rows[5])]
    elif case == "quarterly":
        rows = [[r[0], f"{2000 + i // 4}-{3 * (i % 4) + 1:02d}-01", r[2]] for i, r in
                enumerate(monthly("q", n=9))] + [[r[0], "2000-01-01T06:00:00", r[2]] for r in
                monthly("z", n=1)]  # fmt: skip
        cfg = small_cfg(data={"frequency": "1q", "max_bad_series_fraction": 0.5})
    frame = read_source(write_csv(tmp_path / "s.csv", rows))
    _assert_same_outcome(frame, cfg)
    _assert_same_outcome(frame.reverse(), cfg)


def test_the_screen_gives_the_same_split_in_slices_of_any_size(tmp_path):
    from tasks.ingest import screen
    from tasks.ingest.read import coerce, with_bookkeeping

    constant = [[f"c{k}", t, "7"] for k in range(2) for _, t, _ in monthly(n=8)]
    off_grid = _bad(timestamp=(1, "2000-02-15"))
    rows = promo_rows(good_series(2)) + off_grid + promo_rows(constant + good_series(4)[16:])
    frame = coerce(with_bookkeeping(_source(tmp_path, rows), "x"))
    whole = screen.screen(frame, _skip_cfg({}), slice_rows=10_000)
    assert whole.clean_series == 4
    assert whole.suspect[SERIES_ID].unique(maintain_order=True).to_list() == ["bad", "c0", "c1"]
    for slice_rows in (1, 2, 7, 8, 9):  # cuts inside series, at their ends, every row
        part = screen.screen(frame, _skip_cfg({}), slice_rows=slice_rows)
        assert part.clean.equals(whole.clean) and part.suspect.equals(whole.suspect), slice_rows


ARTIFACT_FLOW = """
import json, sys
from prefect import flow
from prefect.runtime import flow_run
from flows.stages.ingest import ui_artifacts
from tasks.config import load_config

@flow(name="quarantine-artifact")
def show():
    ui_artifacts(load_config("params.yaml"), "data test")
    return str(flow_run.get_id())

print(json.dumps({"flow_run_id": show()}))
"""


@pytest.mark.slow
def test_the_quarantine_artifact_reaches_the_prefect_ui(stage_dir, prefect_server, prefect_env):
    """The ingest stage's UI artifact on a real Prefect server: one table row per quarantined
    series with its reasons, created by the stage's declared ui_artifacts."""
    import subprocess
    import sys

    from tests.flows import api

    rows = promo_rows(good_series(9)) + _bad(value=(2, "-5"))
    write_csv(stage_dir / "raw.csv", rows, header=PROMO)
    params = _skip_cfg({}, fraction=0.1).model_dump(mode="json")
    params["data"]["path"] = "raw.csv"
    (stage_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages.main(["ingest"]) == 0
    env = {**prefect_env, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", ARTIFACT_FLOW], cwd=stage_dir, env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    flow_run_id = json.loads(out.stdout.strip().splitlines()[-1])["flow_run_id"]
    artifact = api.artifacts(prefect_server, flow_run_id)["forecast-quarantine"]
    assert "series quarantined by ingest: 1 (all shown); data test" in artifact["description"]
    [row] = json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
    assert row[SERIES_ID] == "bad" and row["rows"] == 8
    assert row["reasons"].startswith("min_value (1): values below data.min_value = 0.0")

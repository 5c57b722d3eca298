"""The checks of the long format: every failure becomes a row of one failure frame
(FAILURE_SCHEMA: check, column, series_id, timestamp, value, row, source, detail), so that all
problems are collected before anything is raised. The parse checks (text that did not become a
timestamp or number), the pandera schema (tasks.ingest.schema) and the per-series checks pandera
can't
express: order, time grid, gaps, history length, a constant training part."""

from __future__ import annotations

import re

import pandera.polars as pa
import polars as pl

from tasks import timegrid
from tasks.columns import KEY, REQUIRED, SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config
from tasks.ingest.read import BOOKKEEPING, RAW_TIMESTAMP, RAW_VALUE, ROW, SOURCE
from tasks.ingest.schema import TIMESTAMP_DTYPE, build_schema, covariate_columns

# Integer code of a series (first-appearance order) in the per-series checks: grouping and
# joining 10M rows on a UInt32 instead of the series_id text is several times faster and
# keeps the exploded grid free of a repeated string column.
SID = "_sid"

FAILURE_SCHEMA = {
    "check": pl.String,
    "column": pl.String,
    SERIES_ID: pl.String,
    TIMESTAMP: TIMESTAMP_DTYPE,
    VALUE: pl.Float64,
    "row": pl.Int64,
    "source": pl.String,
    "detail": pl.String,
}


# ------------------------------------------------------------------------------------ records
def _failures(
    frame: pl.DataFrame, check: str, column: str, detail: pl.Expr | None = None
) -> pl.DataFrame:
    """Rows of `frame` (which has the bookkeeping columns) as failure records of one check."""
    return frame.select(
        pl.lit(check).alias("check"),
        pl.lit(column).alias("column"),
        pl.col(SERIES_ID).cast(pl.String),
        pl.col(TIMESTAMP).cast(TIMESTAMP_DTYPE, strict=False),
        pl.col(VALUE).cast(pl.Float64, strict=False),
        pl.col(ROW).cast(pl.Int64).alias("row"),
        pl.col(SOURCE).alias("source"),
        (pl.lit(None) if detail is None else detail).cast(pl.String).alias("detail"),
    )


def empty_failures() -> pl.DataFrame:
    return pl.DataFrame(schema=FAILURE_SCHEMA)


def parse_failures(frame: pl.DataFrame) -> list[pl.DataFrame]:
    return [
        _failures(
            frame.filter(pl.col(RAW_TIMESTAMP).is_not_null()),
            "timestamp_parse",
            TIMESTAMP,
            pl.format("unparseable timestamp '{}'", pl.col(RAW_TIMESTAMP)),
        ),
        _failures(
            frame.filter(pl.col(RAW_VALUE).is_not_null()),
            "value_type",
            VALUE,
            pl.format("not a number: '{}'", pl.col(RAW_VALUE)),
        ),
    ]


# pandera's own check names -> the names this report uses.
_PANDERA_CHECKS = {"not_nullable": "not_null", "multiple_fields_uniqueness": "unique_key"}


def schema_failures(frame: pl.DataFrame, cfg: Config) -> list[pl.DataFrame]:
    # pandera sees only the long format; its failure `index` is the position in `frame`.
    data = frame.select(*REQUIRED, *covariates(frame))
    try:
        build_schema(cfg).validate(data, lazy=True)
        return []
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    cases = cases.with_columns(
        pl.col("check").replace(_PANDERA_CHECKS).str.replace(r"^dtype\(.*\)$", "dtype"),
        pl.col("column").replace({"long_format": None}),
    )
    rowwise = cases.filter(pl.col("index").is_not_null() & (pl.col("check") != "dtype"))
    joined = (
        rowwise.select("check", "column", "index")
        .unique(maintain_order=True)
        .join(frame.with_row_index("index").cast({"index": pl.Int32}), on="index", how="left")
    )
    joined = joined.filter(~_reported_elsewhere())
    out = [
        _failures(part, check, column or _column_for(check, frame), _detail_for(check, frame))
        for (check, column), part in joined.group_by("check", "column", maintain_order=True)
    ]
    schemawide = cases.filter(pl.col("index").is_null() | (pl.col("check") == "dtype"))
    out += [
        _schemawide_failure(row, frame)
        for row in schemawide.unique(maintain_order=True).iter_rows(named=True)
    ]
    return out


def _reported_elsewhere() -> pl.Expr:
    """not_null hits that another check already names more precisely."""
    is_null_check = pl.col("check") == "not_null"
    unparsed = (pl.col("column") == TIMESTAMP) & pl.col(RAW_TIMESTAMP).is_not_null()
    not_number = (pl.col("column") == VALUE) & pl.col(RAW_VALUE).is_not_null()
    # pandera's polars backend counts NaN as null in a float column; `finite` reports it.
    nan = (pl.col("column") == VALUE) & pl.col(VALUE).cast(pl.Float64, strict=False).is_nan()
    nan = nan.fill_null(False)
    return is_null_check & (unparsed | not_number | nan)


def _column_for(check: str, frame: pl.DataFrame) -> str:
    if check == "unique_key":
        return ", ".join(KEY)
    return ", ".join(covariates(frame)) or "(covariates)"


def _detail_for(check: str, frame: pl.DataFrame) -> pl.Expr | None:
    if check != "covariate_finite":
        return None
    bad = [
        pl.when(~pl.col(c).cast(pl.Float64, strict=False).is_finite().fill_null(False)).then(
            pl.format("{}={}", pl.lit(c), pl.col(c).cast(pl.String).fill_null("null"))
        )
        for c in covariates(frame)
    ]
    return pl.concat_str(bad, separator=", ", ignore_nulls=True) if bad else None


def covariates(frame: pl.DataFrame) -> list[str]:
    return [c for c in covariate_columns(frame.columns) if c not in BOOKKEEPING]


def _schemawide_failure(case: dict, frame: pl.DataFrame) -> pl.DataFrame:
    """A failure of a whole column (wrong dtype, text covariate): no single row to point at."""
    check, column = case["check"], case["column"]
    if check == "dtype":
        detail = f"column {column} has type {frame.schema[column]}, expected {case['failure_case']}"
    elif check == "covariate_numeric":
        column = ", ".join(c for c in covariates(frame) if not frame.schema[c].is_numeric())
        detail = f"non-numeric covariate column(s): {column}"
    else:
        column = column or _column_for(check, frame)
        detail = str(case["failure_case"])
    record = dict.fromkeys(FAILURE_SCHEMA) | {"check": check, "column": column, "detail": detail}
    return pl.DataFrame([record], schema=FAILURE_SCHEMA)


# ------------------------------------------------------------------------------ series checks
def key_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with a usable key (the per-series checks need a series and a parsed timestamp),
    with their series' integer code SID."""
    keyed = frame.filter(pl.col(SERIES_ID).is_not_null() & pl.col(TIMESTAMP).is_not_null())
    ids = keyed.select(pl.col(SERIES_ID).unique(maintain_order=True)).with_row_index(SID)
    return keyed.join(ids, on=SERIES_ID, how="left", maintain_order="left")


def series_names(keyed: pl.DataFrame) -> pl.DataFrame:
    """SID -> series_id, one row per series."""
    return keyed.group_by(SID, maintain_order=True).agg(pl.col(SERIES_ID).first())


def series_grid(keyed: pl.DataFrame, frequency: str) -> pl.DataFrame:
    """Every (SID, timestamp) a regular series would have: first to last, every `frequency`.

    Anchored at each series' first timestamp; month-like steps use calendar arithmetic, so
    "1mo" from 1949-01-01 gives the first of every month, and month-end data keeps to month ends
    (tasks.timegrid). Columns SID, lo, timestamp.
    """
    ts = pl.col(TIMESTAMP)
    bounds = keyed.group_by(SID, maintain_order=True).agg(
        lo=ts.min(), hi=ts.max(), _end=timegrid.month_end_anchor(ts)
    )
    steps = timegrid.ranges(pl.col("lo"), pl.col("hi"), frequency, pl.col("_end"))
    return bounds.select(SID, "lo", steps.alias(TIMESTAMP)).explode(TIMESTAMP)


def series_failures(
    frame: pl.DataFrame, keyed: pl.DataFrame, grid: pl.DataFrame, cfg: Config
) -> list[pl.DataFrame]:
    out = [_order_failures(keyed), _off_grid_failures(keyed, grid)]
    out.append(_time_of_day_failures(keyed, cfg.data.frequency))
    if cfg.data.fill_gaps == "error":
        out.append(_gap_failures(keyed, grid))
    else:
        out.append(_fill_fraction_failures(keyed, grid, cfg))
    out.append(_history_failures(grid, keyed, cfg))
    out.append(_constant_failures(keyed, grid, cfg))
    if frame.height == 0:
        record = dict.fromkeys(FAILURE_SCHEMA) | {
            "check": "non_empty",
            "column": ", ".join(REQUIRED),
            "detail": "the source holds no data rows",
        }
        out.append(pl.DataFrame([record], schema=FAILURE_SCHEMA))
    return out


def _fmt_ts(expr: pl.Expr) -> pl.Expr:
    # Dates print as dates: monthly data reads "1949-02-15", not "1949-02-15 00:00:00".
    return expr.dt.to_string("%Y-%m-%d %H:%M:%S%.f").str.replace(r" 00:00:00$", "")


def _order_failures(keyed: pl.DataFrame) -> pl.DataFrame:
    # Compare with the latest timestamp seen so far in the same series (source order), so one
    # misplaced row is reported once instead of flagging every row after it.
    latest = pl.col(TIMESTAMP).cum_max().shift(1).over(SID)
    bad = keyed.with_columns(_latest=latest).filter(pl.col(TIMESTAMP) < pl.col("_latest"))
    detail = pl.format("comes after {} in the source", _fmt_ts(pl.col("_latest")))
    return _failures(bad, "increasing_time", TIMESTAMP, detail)


def _off_grid_failures(keyed: pl.DataFrame, grid: pl.DataFrame) -> pl.DataFrame:
    bounds = keyed.group_by(SID).agg(lo=pl.col(TIMESTAMP).min())
    bad = keyed.join(grid.select(SID, TIMESTAMP), on=[SID, TIMESTAMP], how="anti").join(
        bounds, on=SID, how="left"
    )
    detail = pl.format("off the grid that starts at {}", _fmt_ts(pl.col("lo")))
    return _failures(bad, "on_grid", TIMESTAMP, detail)


def _time_of_day_failures(keyed: pl.DataFrame, frequency: str) -> pl.DataFrame:
    """Monthly, quarterly and yearly steps are calendar periods: a time of day there means the
    timestamps were shifted, e.g. local midnights at +05:00 read in UTC are 19:00 the day
    before (and would be published so)."""
    if not re.fullmatch(r"\d+(mo|q|y)", frequency):
        return _failures(keyed.clear(), "calendar_time", TIMESTAMP)
    bad = keyed.filter(pl.col(TIMESTAMP).dt.time() != pl.time(0))
    detail = pl.format("time of day {} on {} data", pl.col(TIMESTAMP).dt.strftime("%H:%M"),
                       pl.lit(frequency))  # fmt: skip
    return _failures(bad, "calendar_time", TIMESTAMP, detail)


def _gap_failures(keyed: pl.DataFrame, grid: pl.DataFrame) -> pl.DataFrame:
    missing = grid.join(keyed.select(SID, TIMESTAMP), on=[SID, TIMESTAMP], how="anti")
    missing = missing.join(series_names(keyed), on=SID, how="left").with_columns(
        pl.lit(None, dtype=pl.Float64).alias(VALUE),
        pl.lit(None, dtype=pl.Int64).alias(ROW),
        pl.lit(None, dtype=pl.String).alias(SOURCE),
    )
    return _failures(missing.sort(KEY), "gap", TIMESTAMP, pl.lit("no row for this timestamp"))


def _fill_fraction_failures(keyed: pl.DataFrame, grid: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """Series whose filled rows would exceed data.max_fill_fraction of their grid: filling that
    much invents the series (monthly data read as daily is 97 % filled), and the median step
    between the rows it has says what the frequency probably is."""
    observed = (
        keyed.join(grid.select(SID, TIMESTAMP), on=[SID, TIMESTAMP], how="semi")
        .group_by(SID)
        .agg(rows=pl.len(), step=pl.col(TIMESTAMP).sort().diff().median())
    )
    too_many = (
        grid.group_by(SID, maintain_order=True)
        .agg(steps=pl.len(), **{TIMESTAMP: pl.col(TIMESTAMP).max()})
        .join(observed, on=SID, how="left")
        .with_columns(missing=pl.col("steps") - pl.col("rows").fill_null(0))
        .filter(pl.col("missing") > cfg.data.max_fill_fraction * pl.col("steps"))
        .join(series_names(keyed), on=SID, how="left")
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias(VALUE),
            pl.lit(None, dtype=pl.Int64).alias(ROW),
            pl.lit(None, dtype=pl.String).alias(SOURCE),
        )
    )
    detail = pl.format(
        "gap filling would invent {} of its {} steps; the median step between its rows is {} "
        "days (data.frequency: {})",
        pl.col("missing"),
        pl.col("steps"),
        (pl.col("step").dt.total_seconds() / 86_400).round(2),
        pl.lit(cfg.data.frequency),
    )
    return _failures(too_many, "max_fill", SERIES_ID, detail)


def _history_failures(grid: pl.DataFrame, grid_keyed: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    # Counted on the grid: that is the series' length once gaps are filled.
    short = (
        grid.group_by(SID, maintain_order=True)
        .agg(steps=pl.len(), **{TIMESTAMP: pl.col(TIMESTAMP).max()})
        .filter(pl.col("steps") < cfg.min_history)
        .join(series_names(grid_keyed), on=SID, how="left")
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias(VALUE),
            pl.lit(None, dtype=pl.Int64).alias(ROW),
            pl.lit(None, dtype=pl.String).alias(SOURCE),
        )
    )
    detail = pl.format("has {} steps, needs at least {}", pl.col("steps"), cfg.min_history)
    return _failures(short, "min_history", SERIES_ID, detail)


def _constant_failures(keyed: pl.DataFrame, grid: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """Series whose training part (every step but the last forecast.horizon, counted on the
    grid) holds one value: there is nothing to learn, the scaler divides by a zero spread and
    MASE by a zero seasonal-naive error. A stuck sensor or a default value, usually."""
    if not keyed.schema[VALUE].is_numeric():  # the dtype check reports it
        return _failures(keyed.clear(), "constant", VALUE)
    cuts = grid.group_by(SID).agg(
        _cut=pl.col(TIMESTAMP).get(-cfg.forecast.horizon, null_on_oob=True)
    )
    stats = (
        keyed.join(cuts, on=SID, how="left")
        .filter((pl.col(TIMESTAMP) < pl.col("_cut")) & pl.col(VALUE).is_finite())
        .group_by(SID, maintain_order=True)
        .agg(
            pl.col(SERIES_ID).first(),
            pl.col(TIMESTAMP).max(),
            _lo=pl.col(VALUE).min(),
            _hi=pl.col(VALUE).max(),
            _n=pl.len(),
        )
        .filter((pl.col("_lo") == pl.col("_hi")) & (pl.col("_n") >= 2))
        .with_columns(
            pl.col("_lo").alias(VALUE),
            pl.lit(None, dtype=pl.Int64).alias(ROW),
            pl.lit(None, dtype=pl.String).alias(SOURCE),
        )
    )
    detail = pl.format("all {} values of its training part (up to this step) are {}",
                       pl.col("_n"), pl.col(VALUE))  # fmt: skip
    return _failures(stats, "constant", VALUE, detail)

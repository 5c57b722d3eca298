"""What a publish may store: the checks of its forecasts and lineage, and the rows they become
(tasks/publishing/store.py writes them)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.publishing.lineage import LINEAGE_FIELDS
from tasks.publishing.store_schema import (
    DEFAULT_MODEL,
    FORECAST,
    FORECAST_COLUMNS,
    HORIZON_STEP,
    INTERVAL_COLUMNS,
    INTERVAL_LEVELS,
    MODEL,
    REASON,
    TS_FORMAT,
    UNKNOWN,
)


def run_key(lineage: Mapping[str, str]) -> str:
    """Identity of a run: the same data, params and model give the same key, whatever the time.
    The model is identified by its weights and config (`model_id`, tasks/publishing/model_id.py)
    when the lineage has it: two saves of the same weights differ in their file's bytes
    (date_saved)."""
    model = lineage.get("model_id") or lineage["model_md5"]
    parts = (lineage["data_md5"], lineage["params_md5"], model)
    return hashlib.md5(":".join(parts).encode()).hexdigest()


def _check_lineage(lineage: Mapping[str, str]) -> None:
    missing = [f for f in LINEAGE_FIELDS if not lineage.get(f)]
    if missing:
        raise ValueError(f"lineage lacks {missing}: every stored row must say where it came from")


def _check_forecasts(forecasts: pl.DataFrame) -> None:
    missing = [c for c in FORECAST_COLUMNS if c not in forecasts.columns]
    if missing:
        raise ValueError(f"forecasts lack columns {missing} (have {forecasts.columns})")
    if forecasts.height == 0:
        raise ValueError("forecasts are empty: nothing to publish")
    nulls = {c: n for c in FORECAST_COLUMNS if (n := forecasts[c].null_count())}
    if nulls:
        raise ValueError(f"forecasts hold nulls: {nulls}")
    if not isinstance(forecasts[TIMESTAMP].dtype, pl.Datetime | pl.Date):
        raise ValueError(
            f"forecasts.{TIMESTAMP} must be Datetime, got {forecasts[TIMESTAMP].dtype}"
        )
    bad = forecasts.filter(~pl.col(FORECAST).cast(pl.Float64).is_finite()).height
    if bad:
        raise ValueError(f"forecasts hold {bad} non-finite values (NaN/inf)")
    if forecasts[HORIZON_STEP].min() < 1:  # type: ignore[operator]
        raise ValueError(f"{HORIZON_STEP} must start at 1")
    dupes = forecasts.height - forecasts.select(SERIES_ID, TIMESTAMP).n_unique()
    if dupes:
        # INSERT OR IGNORE would silently keep one of them: refuse instead.
        raise ValueError(f"forecasts hold {dupes} duplicate ({SERIES_ID}, {TIMESTAMP}) rows")
    _check_intervals(forecasts)


def _check_intervals(forecasts: pl.DataFrame) -> None:
    """Bounds come in pairs, are finite, hold the forecast, and nest (80 % inside 95 %)."""
    present = [lv for lv in INTERVAL_LEVELS if f"lo_{lv}" in forecasts.columns]
    for lv in INTERVAL_LEVELS:
        if (f"lo_{lv}" in forecasts.columns) != (f"hi_{lv}" in forecasts.columns):
            raise ValueError(f"forecasts hold only one of lo_{lv} / hi_{lv}")
    f = pl.col(FORECAST)
    for lv in present:
        lo, hi = pl.col(f"lo_{lv}").cast(pl.Float64), pl.col(f"hi_{lv}").cast(pl.Float64)
        nulls = forecasts.select(lo.null_count() + hi.null_count()).item()
        if nulls:
            raise ValueError(f"forecasts hold {nulls} null lo_{lv}/hi_{lv} bounds")
        bad = forecasts.filter(~lo.is_finite() | ~hi.is_finite()).height
        if bad:
            raise ValueError(f"forecasts hold {bad} non-finite lo_{lv}/hi_{lv} bounds")
        outside = forecasts.filter((lo > f) | (hi < f)).height
        if outside:
            raise ValueError(f"{outside} forecasts lie outside their lo_{lv}..hi_{lv} interval")
    for inner, outer in zip(present, present[1:], strict=False):
        wider = (pl.col(f"lo_{outer}") <= pl.col(f"lo_{inner}")) & (
            pl.col(f"hi_{outer}") >= pl.col(f"hi_{inner}")
        )
        bad = forecasts.filter(~wider).height
        if bad:
            raise ValueError(f"{bad} {outer} % intervals do not contain the {inner} % ones")


def _iso(ts: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        # Store UTC wall time so every row compares on one clock.
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return ts.cast(pl.Datetime("us")).dt.strftime(TS_FORMAT)


def _rows(forecasts: pl.DataFrame, lineage: Mapping[str, str], key: str) -> pl.DataFrame:
    """Validated rows in ROW_COLUMNS order (turned into Python tuples a batch at a time when
    inserted: 240k rows as tuples at once held 400 MB)."""
    _check_lineage(lineage)
    _check_forecasts(forecasts)
    frame = forecasts.select(
        pl.lit(key).alias("run_key"),
        pl.col(SERIES_ID).cast(pl.String),
        _iso(pl.col(TIMESTAMP), forecasts[TIMESTAMP].dtype),
        pl.col(HORIZON_STEP).cast(pl.Int64),
        pl.col(FORECAST).cast(pl.Float64),
        *(
            (pl.col(c) if c in forecasts.columns else pl.lit(None)).cast(pl.Float64).alias(c)
            for c in INTERVAL_COLUMNS
        ),
        (pl.col(MODEL) if MODEL in forecasts.columns else pl.lit(DEFAULT_MODEL))
        .cast(pl.String)
        .alias(MODEL),
        (pl.col(REASON) if REASON in forecasts.columns else pl.lit(UNKNOWN))
        .cast(pl.String)
        .alias(REASON),
        *(pl.lit(str(lineage[f])).alias(f) for f in LINEAGE_FIELDS),
    )
    return frame

"""Gap filling: a validated series put onto its full time grid, the new rows filled forward or
interpolated (data.fill_gaps) and marked in the FILLED column."""

from __future__ import annotations

import polars as pl

from tasks.columns import KEY, REQUIRED, SERIES_ID, VALUE
from tasks.ingest import checks
from tasks.ingest.checks import SID, series_names
from tasks.ingest.schema import FILLED


def fill_gaps(frame: pl.DataFrame, grid: pl.DataFrame, method: str) -> pl.DataFrame:
    """Left-join onto the grid (a no-op when nothing is missing) and fill the new rows.

    Reached only after validation passed: no null values remain, so a null after the join is a
    gap. Covariates are filled the same way as the value.
    """
    covariates = [c for c in checks.covariates(frame) if c != SID]
    was_filled = pl.col(FILLED).fill_null(True) if FILLED in frame.columns else pl.lit(False)
    if frame.height == grid.height:
        # Validation passed, so every row is unique and on its grid: equal counts mean the rows
        # cover the grid exactly and nothing is missing. Skip the join; sort only if needed
        # (each series is already in time order, so sorted contiguous ids mean sorted keys).
        ids = frame[SERIES_ID]
        if not (ids.len() < 2 or (ids.slice(1) >= ids.slice(0, ids.len() - 1)).all()):
            frame = frame.sort(KEY)
        return frame.with_columns(was_filled.alias(FILLED)).select(*REQUIRED, *covariates, FILLED)
    grid = grid.join(series_names(frame), on=SID, how="left")
    full = (
        grid.join(frame.drop(SID), on=KEY, how="left")
        .with_columns(was_filled.or_(pl.col(VALUE).is_null()).alias(FILLED))
        .sort(KEY)
    )
    # Text columns (static covariates: one value per series) cannot be interpolated: carried.
    numeric = [c for c in (VALUE, *covariates) if full.schema[c].is_numeric()]
    text = [c for c in covariates if c not in numeric]
    carry = [pl.col(c).forward_fill().over(SERIES_ID) for c in text]
    if method == "interpolate":
        fill = [pl.col(c).interpolate().over(SERIES_ID) for c in numeric] + carry
    else:
        fill = [pl.col(c).forward_fill().over(SERIES_ID) for c in numeric] + carry
    return full.with_columns(fill).select(*REQUIRED, *covariates, FILLED)

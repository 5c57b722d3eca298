"""Publish: forecasts for the horizon after each series' last observation, in original units."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.forecast import forecast_original
from tasks.prepare import Prepared


def future_timestamps(last: np.ndarray, horizon: int, frequency: str) -> pl.Series:
    """Timestamps 1..horizon steps of `frequency` after each entry of `last`, series-major."""
    n, unit = re.fullmatch(r"(\d+)(\D+)", frequency).groups()
    steps = pl.DataFrame(
        {"last": np.repeat(last, horizon), "h": np.tile(np.arange(1, horizon + 1), len(last))}
    )
    # Calendar-aware offsets ("1mo" after Jan 31 is Feb 28), which a fixed timedelta is not.
    return steps.select(
        pl.col("last").dt.offset_by(pl.format("{}" + unit, pl.col("h") * int(n)))
    ).to_series()


def future_forecasts(prepared: Prepared, model, frequency: str) -> pl.DataFrame:
    """series_id, timestamp, horizon_step, forecast for the steps after the last observation."""
    horizon = prepared.geometry.horizon
    preds = forecast_original(prepared, model, prepared.forecast_starts)  # (S, H)
    last = prepared.timestamps[prepared.offsets[1:] - 1]
    return pl.DataFrame(
        {
            SERIES_ID: np.repeat(prepared.series_ids.astype(str), horizon),
            TIMESTAMP: future_timestamps(last, horizon, frequency),
            "horizon_step": np.tile(np.arange(1, horizon + 1), len(last)),
            "forecast": preds.reshape(-1),
        }
    )

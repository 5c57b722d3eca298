"""Evaluate: score the model and the naive baselines on the held-out tail of every series."""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks import baselines, metrics
from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.config import Config
from tasks.forecast import forecast_original
from tasks.prepare import Prepared

MODELS = ("lstm", "naive", "seasonal_naive")


def evaluate(prepared: Prepared, model, cfg: Config) -> tuple[dict, pl.DataFrame]:
    """Scores averaged over series ({"lstm": {...}, "naive": {...}, ...}) and the test forecasts."""
    horizon, m = cfg.forecast.horizon, cfg.data.season_length
    lstm = forecast_original(prepared, model, prepared.test_starts)
    per_model: dict[str, list[dict]] = {name: [] for name in MODELS}
    rows = []
    for s in range(len(prepared.series_ids)):
        lo, end, hi = (
            int(prepared.offsets[s]),
            int(prepared.train_end[s]),
            int(prepared.offsets[s + 1]),
        )
        insample, actual = prepared.raw[lo:end], prepared.raw[end:hi]
        preds = {
            "lstm": lstm[s],
            "naive": baselines.naive(insample, horizon),
            "seasonal_naive": baselines.seasonal_naive(insample, horizon, m),
        }
        for name, pred in preds.items():
            per_model[name].append(metrics.score(actual, pred, insample, m))
        rows.append(
            pl.DataFrame(
                {
                    SERIES_ID: [str(prepared.series_ids[s])] * horizon,
                    TIMESTAMP: prepared.timestamps[end:hi],
                    "horizon_step": np.arange(1, horizon + 1),
                    "actual": actual,
                    **preds,
                }
            )
        )
    scores = {
        name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
        for name, rs in per_model.items()
    }
    scores["n_series"] = len(prepared.series_ids)
    return scores, pl.concat(rows)

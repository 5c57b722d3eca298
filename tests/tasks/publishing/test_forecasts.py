"""Publish's per-series forecasts (tasks/publishing/forecasts.py): each series by the model the
choice gave it, the statistical candidates fitted together over the series that chose them (one
batched statsforecast fit per candidate), equal to the one-series fits, with progress logged."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID
from tasks.evaluation.baselines import FORECASTERS
from tasks.features.prepare import prepare
from tasks.publishing.forecasts import candidate_forecasts, future_forecasts
from tests.tasks.evaluation.test_backtest import (
    HORIZON,
    SEASON,
    SeasonalNaiveModel,
    make_cfg,
    make_frame,
)

LENGTHS = {"a": 60, "b": 72, "c": 66, "d": 54}


def test_each_series_is_forecast_by_its_chosen_model_fitted_in_one_batch(caplog):
    prepared = prepare(make_frame(LENGTHS), make_cfg(n_windows=1))
    choices = {"a": "ets", "b": "croston", "c": "ets"}  # d: not listed, the LSTM
    with caplog.at_level(logging.INFO, logger="forecast"):
        out = future_forecasts(prepared, SeasonalNaiveModel(), "1mo", choices=choices)
    assert any(
        m.startswith("publish: fitting ets, croston in ") and ": 3 series in" in m
        for m in caplog.messages
    )
    lstm = future_forecasts(prepared, SeasonalNaiveModel(), "1mo")
    for s, sid in enumerate(prepared.series_ids):
        rows = out.filter(pl.col(SERIES_ID) == sid).sort("horizon_step")
        name = choices.get(sid, "lstm")
        assert rows["model"].unique().to_list() == [name]
        if name == "lstm":
            expected = lstm.filter(pl.col(SERIES_ID) == sid).sort("horizon_step")["forecast"]
        else:
            expected = FORECASTERS[name](prepared.raw[prepared.series(s)], HORIZON, SEASON)
        np.testing.assert_allclose(rows["forecast"], expected, rtol=1e-6)


def test_candidate_forecasts_group_the_series_by_candidate():
    prepared = prepare(make_frame(LENGTHS), make_cfg(n_windows=1))
    groups = candidate_forecasts(prepared, ["ets", "lstm", "naive", "ets"])
    assert [(name, rows) for name, rows, _ in groups] == [("ets", [0, 3]), ("naive", [2])]
    assert groups[0][2].shape == (2, HORIZON)
    assert candidate_forecasts(prepared, ["lstm"] * 4) == []

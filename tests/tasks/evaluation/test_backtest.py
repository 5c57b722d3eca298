"""Rolling-origin backtest: fold layout, no leakage into a fold's scaler, which model scores which
fold, scores against the baselines, and the bad inputs (short series, long horizon, constant
series, a diverged model). Fake models stand in for Keras here: only arithmetic is under test."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, parse_config
from tasks.evaluation import backtest
from tasks.features.prepare import prepare
from tasks.model.forecast import DivergedModel

LOOKBACK, HORIZON, VALIDATION, SEASON = 12, 6, 3, 12
LENGTHS = {"a": 60, "b": 72}


def make_cfg(n_windows: int = 3, step: int = 4, refit: bool = False, **extra) -> Config:
    raw = {
        "data": {"season_length": SEASON},
        "forecast": {"horizon": HORIZON},
        "prepare": {"lookback": LOOKBACK, "validation_steps": VALIDATION},
        "evaluate": {"n_windows": n_windows, "step": step, "refit": refit},
        **extra,
    }
    return parse_config(raw)


def make_frame(lengths: dict[str, int] = LENGTHS, constant: str | None = None) -> pl.DataFrame:
    parts = []
    for i, (sid, n) in enumerate(lengths.items()):
        t = np.arange(n)
        value = (100.0 * (i + 1) + 2.0 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / SEASON))
        if sid == constant:
            value = np.full(n, 50.0)
        stamps = pl.datetime_range(
            datetime(2000, 1, 1), datetime(2030, 1, 1), "1mo", eager=True, time_unit="us"
        ).head(n)
        parts.append(pl.DataFrame({SERIES_ID: [sid] * n, TIMESTAMP: stamps, VALUE: value}))
    return pl.concat(parts)


class SeasonalNaiveModel:
    """Predicts the last season of its (scaled) input window: seasonal naive in the model space."""

    def __init__(self, offset: float = 0.0):
        self.offset = offset
        self.calls = 0

    def predict(self, x, batch_size=None, verbose=0):
        self.calls += 1
        idx = [LOOKBACK - SEASON + (h % SEASON) for h in range(HORIZON)]
        return x[:, idx, 0] + self.offset


class NaNModel:
    def predict(self, x, batch_size=None, verbose=0):
        return np.full((x.shape[0], HORIZON), np.nan)


# ---------------------------------------------------------------- geometry
def test_lstm_history_counts_the_folds_and_min_history_is_what_naive_needs():
    assert make_cfg(n_windows=1).lstm_history == LOOKBACK + 2 * HORIZON + VALIDATION
    assert make_cfg(n_windows=3, step=4).lstm_history == LOOKBACK + 2 * HORIZON + VALIDATION + 8
    # a series is published from one observation on (tasks/evaluation/short.py)
    assert make_cfg(n_windows=3, step=4).min_history == 1


def test_folds_cut_each_series_at_its_fold_end():
    cfg = make_cfg()
    full = prepare(make_frame(), cfg)
    folds = backtest.build_folds(full, cfg)
    assert len(folds) == 3 and folds[0] is full
    origins = backtest.origins(full, cfg)
    for k, fold in enumerate(folds):
        for s, sid in enumerate(full.series_ids):
            n = LENGTHS[sid] - k * 4
            assert int(fold.offsets[s + 1] - fold.offsets[s]) == n
            # origin = N - H - k * step, in the series' own positions and as a timestamp
            assert int(fold.train_end[s] - fold.offsets[s]) == LENGTHS[sid] - HORIZON - k * 4
            assert fold.timestamps[fold.train_end[s]] == full.timestamps[origins[k, s]]
            # the fold's test tail is the H steps after its origin, from the real data
            tail = fold.raw[fold.train_end[s] : fold.train_end[s] + HORIZON]
            np.testing.assert_array_equal(tail, full.raw[origins[k, s] : origins[k, s] + HORIZON])


def test_a_fold_scaler_never_sees_the_fold_test_values():
    cfg = make_cfg()
    frame = make_frame()
    fold2 = backtest.build_folds(prepare(frame, cfg), cfg)[2]
    # Blow up every value from fold 2's origin on (per series): its scaler and training values
    # must not move.
    origin = {str(sid): LENGTHS[str(sid)] - HORIZON - 2 * 4 for sid in fold2.series_ids}
    position = pl.int_range(pl.len()).over(SERIES_ID)
    bumped = frame.with_columns(
        pl.when(position >= pl.col(SERIES_ID).replace_strict(origin))
        .then(pl.col(VALUE) * 50)
        .otherwise(pl.col(VALUE))
    )
    assert not bumped.equals(frame)
    again = backtest.build_folds(prepare(bumped, cfg), cfg)[2]
    for s in range(2):
        train = slice(int(fold2.offsets[s]), int(fold2.train_end[s]))
        np.testing.assert_array_equal(again.values[train], fold2.values[train])
        sid = str(fold2.series_ids[s])
        assert again.transform.scalers[sid].mean_ == fold2.transform.scalers[sid].mean_


@pytest.mark.parametrize(
    ("lengths", "cfg_kwargs", "message"),
    [
        ({"a": 60, "b": 34}, {}, "'b': 34 steps, the LSTM's folds need at least 35"),
        ({"a": 60, "b": 5}, {}, "'b': 5 steps"),
        ({"a": 60}, {"n_windows": 10, "step": 12}, "evaluate.n_windows"),
    ],
)
def test_prepared_data_that_does_not_fit_the_lstm_folds_is_a_clear_error(
    lengths, cfg_kwargs, message
):
    """Prepare keeps the series shorter than Config.lstm_history out (they are forecast by
    tasks/evaluation/short.py): a prepared series that short is data from other params."""
    cfg = make_cfg(**cfg_kwargs)
    ids = np.array(list(lengths))
    with pytest.raises(backtest.FoldGeometryError, match=re.escape(message)):
        backtest.check_geometry(ids, np.array(list(lengths.values())), cfg)


def test_fold_geometry_error_is_a_pipeline_error():
    from tasks.errors import PipelineError

    assert issubclass(backtest.FoldGeometryError, PipelineError)


# ---------------------------------------------------------------- models per fold
def _fake_train():
    calls = []

    def train_fn(prepared, cfg, checkpoint_dir):
        calls.append(int(prepared.train_end[0] - prepared.offsets[0]))
        return SimpleNamespace(model=SeasonalNaiveModel(), summary={"seconds": 0.0})

    return train_fn, calls


@pytest.mark.parametrize(
    ("n_windows", "refit", "fits"),
    [(3, False, []), (3, True, [50, 46]), (1, False, []), (1, True, [])],
)
def test_which_models_are_trained(n_windows, refit, fits):
    cfg = make_cfg(n_windows=n_windows, refit=refit)
    folds = backtest.build_folds(prepare(make_frame(), cfg), cfg)
    stage = SeasonalNaiveModel()
    train_fn, calls = _fake_train()
    fm = backtest.fold_models(folds, cfg, lambda: stage, "unused", train_fn=train_fn)
    # refit: fits at each later fold's origin (series a: 60 - 6 - k * 4); without refit the
    # train stage's model (fitted on the earliest fold) scores every fold and nothing is fitted
    assert calls == fits
    assert fm.stage is stage and len(fm.models) == n_windows
    assert fm.models[0] is stage
    if not refit:
        assert all(m is stage for m in fm.models) and fm.trained == []


@pytest.mark.parametrize(
    ("n_windows", "refit", "fold"), [(3, False, 2), (3, True, 0), (1, False, 0)]
)
def test_the_train_stage_fits_the_fold_whose_model_scores_the_backtest(n_windows, refit, fold):
    cfg = make_cfg(n_windows=n_windows, refit=refit)
    prepared = prepare(make_frame(), cfg)
    expected = backtest.build_folds(prepared, cfg)[fold]
    got = backtest.training_fold(prepared, cfg)
    # the earliest fold without refit: trained through series a's fold-2 origin (60 - 6 - 2 * 4)
    assert got.train_end[0] - got.offsets[0] == expected.train_end[0] - expected.offsets[0]
    assert got.train_end[0] - got.offsets[0] == LENGTHS["a"] - HORIZON - 4 * fold
    for name in ("series_ids", "offsets", "train_end", "values", "raw"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


# ---------------------------------------------------------------- scores
def test_a_model_equal_to_seasonal_naive_scores_like_it():
    cfg = make_cfg()
    folds = backtest.build_folds(prepare(make_frame(), cfg), cfg)
    results = backtest.run_backtest(folds, [SeasonalNaiveModel()] * 3)
    scores = backtest.aggregate(results)
    for metric in ("rmse", "mae", "smape", "mase"):
        assert scores["lstm"][metric] == pytest.approx(scores["seasonal_naive"][metric], rel=1e-6)
    assert set(scores) == {"lstm", "naive", "seasonal_naive", "drift"}
    # the scaled-space residuals are the seasonal-naive errors after the transform
    assert results[0].residuals.shape == (2, HORIZON)
    assert scores["naive"]["rmse"] != pytest.approx(scores["seasonal_naive"]["rmse"])


def test_aggregate_is_the_mean_over_folds_and_series():
    cfg = make_cfg()
    folds = backtest.build_folds(prepare(make_frame(), cfg), cfg)
    results = backtest.run_backtest(folds, [SeasonalNaiveModel(offset=0.1)] * 3)
    rows = [row for r in results for row in r.scores["lstm"]]
    assert len(rows) == 6
    assert backtest.aggregate(results)["lstm"]["rmse"] == pytest.approx(
        np.mean([r["rmse"] for r in rows])
    )


def test_constant_series_leaves_mase_out_and_names_it():
    cfg = make_cfg()
    folds = backtest.build_folds(prepare(make_frame(constant="a"), cfg), cfg)
    results = backtest.run_backtest(folds, [SeasonalNaiveModel(offset=0.1)] * 3)
    assert backtest.undefined_mase(results) == [{"fold": k, "series_id": "a"} for k in range(3)]
    scores = backtest.aggregate(results)
    only_b = [r.scores["lstm"][1]["mase"] for r in results]
    assert scores["lstm"]["mase"] == pytest.approx(np.mean(only_b))
    assert scores["lstm"]["rmse"] is not None


def test_every_series_constant_gives_no_mase():
    cfg = make_cfg(n_windows=1)
    frame = make_frame({"a": 40}, constant="a")
    results = backtest.run_backtest([prepare(frame, cfg)], [SeasonalNaiveModel()])
    assert backtest.aggregate(results)["lstm"]["mase"] is None


def test_nan_forecasts_stop_the_backtest():
    cfg = make_cfg()
    folds = backtest.build_folds(prepare(make_frame(), cfg), cfg)
    with pytest.raises(DivergedModel, match="non-finite"):
        backtest.run_backtest(folds, [NaNModel()] * 3)


# ---------------------------------------------------------------- statistical candidates
def test_statistical_candidates_are_fitted_fold_by_fold_with_progress(caplog):
    from tasks.evaluation.baselines import MODELS
    from tasks.evaluation.statistical import ets

    cfg = make_cfg()
    folds = backtest.build_folds(prepare(make_frame(), cfg), cfg)
    with caplog.at_level(logging.INFO, logger="forecast"):
        results = backtest.run_backtest(folds, [SeasonalNaiveModel()] * 3, (*MODELS, "ets"))
    assert any(
        m.startswith("backtest: fitting ets in ") and "on 3 fold(s): 6 series in" in m
        for m in caplog.messages
    )
    for r in results:  # the batched fits of each fold are the per-series fits on its history
        p = r.prepared
        ref = [ets(p.raw[p.offsets[s] : p.train_end[s]], HORIZON, SEASON) for s in range(2)]
        np.testing.assert_allclose(r.preds["ets"], np.stack(ref), rtol=1e-6)
    # the final model's rescoring takes the fold's candidate forecasts instead of refitting them
    again = backtest.score_fold(0, folds[0], SeasonalNaiveModel(), (*MODELS, "ets"), results[0])
    assert again.preds["ets"] is results[0].preds["ets"]

"""The statistical candidates (tasks/evaluation/statistical.py): statsforecast's AutoETS, AutoTheta
and the intermittent-demand models with the baselines' signature; a fit that cannot be made
forecasts the last value, as naive does; the batched fit over many series (`forecast_many`, what
the backtest and publish use) equals the per-series functions."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from tasks.config import EvaluateConfig, parse_config
from tasks.evaluation import statistical
from tasks.evaluation.baselines import FORECASTERS, MODELS, forecast_all, scored_models
from tasks.evaluation.combinations import COMBINATIONS
from tasks.evaluation.statistical import (
    STATISTICAL,
    adida,
    ces,
    croston,
    ets,
    forecast_many,
    season_for,
    theta,
    tsb,
)

SEASON = 12


def _trend_season(n: int) -> np.ndarray:
    t = np.arange(n)
    return (100.0 + 3.0 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / SEASON))


def _intermittent(n: int, seed: int = 0) -> np.ndarray:
    """Demand in about a third of the periods, sizes 1..9: zeros everywhere else."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.35, rng.integers(1, 10, n), 0).astype(np.float64)


def _histories() -> list[np.ndarray]:
    """Every case the batch must treat as the per-series functions do: seasonal with enough
    history, below two seasons (non-seasonal fit), very short, intermittent, constant, a
    non-finite value inside (no fit: last value)."""
    noise = np.random.default_rng(1).normal(0.0, 2.0, 60)
    return [
        _trend_season(60) + noise,
        _trend_season(40),
        _trend_season(18) + noise[:18],
        _trend_season(5),
        _intermittent(50),
        np.full(30, 7.0),
        np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0]),
    ]


def test_ets_continues_a_multiplicative_trend_and_season():
    y = _trend_season(66)
    pred = ets(y[:60], 6, SEASON)
    assert pred.shape == (6,)
    np.testing.assert_allclose(pred, y[60:], rtol=1e-4)  # the exact generating model


def test_theta_follows_a_trend_that_naive_misses():
    y = 100.0 + 3.0 * np.arange(84) + np.random.default_rng(0).normal(0.0, 2.0, 84)
    pred = theta(y[:72], 12, 1)
    naive = np.full(12, y[71])
    assert np.abs(pred - y[72:]).mean() < 0.3 * np.abs(naive - y[72:]).mean()


def test_ces_follows_a_trend_and_season_that_seasonal_naive_misses():
    t = np.arange(84)
    noise = np.random.default_rng(2).normal(0.0, 2.0, 84)
    y = 100.0 + 3.0 * t + 10.0 * np.sin(2 * np.pi * t / SEASON) + noise
    pred = ces(y[:72], 12, SEASON)
    seasonal_naive = y[60:72]
    assert pred.shape == (12,)
    # The trend adds 36 over a season: seasonal naive misses it all, CES most of it (0.27x).
    assert np.abs(pred - y[72:]).mean() < 0.4 * np.abs(seasonal_naive - y[72:]).mean()


@pytest.mark.parametrize("fn", list(STATISTICAL.values()))
def test_short_or_unfittable_histories_forecast_the_last_value(fn):
    # Shorter than two seasons: the non-seasonal model; a NaN inside: no fit, the last value.
    assert np.isfinite(fn(_trend_season(18), 4, SEASON)).all()
    np.testing.assert_array_equal(fn([1.0, np.nan, 3.0, 4.0, 5.0, 6.0], 3, 1), [6.0] * 3)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        fn([], 3, SEASON)


def test_the_season_rule_needs_more_than_one_season():
    assert season_for(13, 12) == 12 and season_for(12, 12) == 1 and season_for(5, 1) == 1


def test_between_one_and_two_seasons_ets_may_fit_the_season_and_theta_and_ces_fit_as_without():
    t = np.arange(23)
    y = 100.0 + 30.0 * np.sin(2 * np.pi * t / SEASON) + np.random.default_rng(3).normal(0, 1, 23)
    for fn in (theta, ces):  # their own two-season rule: the non-seasonal fit, exactly
        np.testing.assert_array_equal(fn(y, 6, SEASON), fn(y, 6, 1))
    # A strong season in 23 months: AutoETS picks a seasonal form and follows it (the
    # non-seasonal fit forecasts the level).
    actual = 100.0 + 30.0 * np.sin(2 * np.pi * np.arange(23, 29) / SEASON)
    seasonal, flat = ets(y, 6, SEASON), ets(y, 6, 1)
    assert np.abs(seasonal - actual).mean() < 0.3 * np.abs(flat - actual).mean()


# ---------------------------------------------------------------- intermittent demand
def test_intermittent_candidates_forecast_a_flat_demand_rate_between_the_sizes():
    y = _intermittent(120)
    rate = y.mean()
    for fn in (croston, adida, tsb):
        pred = fn(y, 6, SEASON)
        assert np.allclose(pred, pred[0])  # a rate per period, not a path
        assert 0.4 * rate < pred[0] < 2.5 * rate  # near the mean demand, far below a size


def test_tsb_lets_the_forecast_decay_when_demand_stops_and_croston_does_not():
    # Demand every other period, then none for 30 periods: obsolescence (why TSB is listed).
    y = np.concatenate([np.tile([5.0, 0.0], 30), np.zeros(30)])
    assert tsb(y, 3, 1)[0] < 0.2 * croston(y, 3, 1)[0]


# ---------------------------------------------------------------- many series at once
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_the_batched_fit_equals_the_per_series_fits(n_jobs):
    histories = _histories()
    names = list(STATISTICAL)
    done = []
    got = forecast_many(names, histories, 6, SEASON, n_jobs=n_jobs, on_progress=done.append)
    for name in names:
        ref = np.stack([STATISTICAL[name](h, 6, SEASON) for h in histories])
        np.testing.assert_allclose(got[name], ref, rtol=1e-6, atol=1e-9, err_msg=name)
    assert done == sorted(done) and done[-1] == len(histories)


class Fragile:
    """A model that raises on a short history and forecasts NaN on a constant one, else the mean of
    the last three values: both failures must come back as the last value, batched or not."""

    alias = "fragile"
    uses_exog = False

    def __repr__(self) -> str:
        return self.alias

    def forecast(self, y, h, X=None, X_future=None, fitted=False):
        if y.size < 10:
            raise ValueError("too short")
        if np.ptp(y) == 0:
            return {"mean": np.full(h, np.nan)}
        return {"mean": np.full(h, y[-3:].mean())}


def test_failed_fits_in_a_batch_forecast_the_last_value_as_alone(monkeypatch):
    monkeypatch.setattr(statistical, "_model", lambda name, season_length: Fragile())
    histories = [_trend_season(30), _trend_season(6), np.full(20, 7.0), _trend_season(12)]
    got = forecast_many(["ets"], histories, 4, SEASON, n_jobs=1)["ets"]
    ref = np.stack([ets(h, 4, SEASON) for h in histories])
    np.testing.assert_array_equal(got, ref)
    last = [h[-1] for h in histories]
    np.testing.assert_array_equal(got[1:3], np.repeat([last[1:3]], 4, axis=0).T)
    np.testing.assert_allclose(got[[0, 3], 0], [histories[0][-3:].mean(), histories[3][-3:].mean()])


def test_the_batch_is_cut_into_calls_that_report_progress(monkeypatch):
    # A fake clock on which every series takes 0.5 s to fit: after a first call of one series,
    # calls of CHUNK_S = 1 s hold 2 series each, and each one reports.
    now = [0.0]
    call = statistical._statsforecast_call

    def timed_call(names, ys, *args):
        now[0] += 0.5 * len(ys)
        return call(names, ys, *args)

    monkeypatch.setattr(statistical, "_statsforecast_call", timed_call)
    monkeypatch.setattr(statistical, "CHUNK_S", 1.0)
    monkeypatch.setattr(statistical, "FIRST_CHUNK", 1)
    histories = [_trend_season(30) + i for i in range(7)]
    done = []
    got = forecast_many(
        ["theta"], histories, 3, 1, n_jobs=1, on_progress=done.append, clock=lambda: now[0]
    )
    assert done == [1, 3, 5, 7]
    ref = np.stack([theta(h, 3, 1) for h in histories])
    np.testing.assert_allclose(got["theta"], ref, rtol=1e-6)


def test_progress_lines_say_what_is_fitted_and_in_how_many_processes():
    assert statistical.fitting(["ets", "theta"], 2) == "ets, theta in 2 processes"
    assert statistical.fitting(["naive", "tsb"], 1) == "naive, tsb in 1 process"
    assert statistical.fitting(["naive", "drift"]) == "naive, drift"


def test_chunk_sizes_follow_the_measured_rate():
    assert statistical._chunk_size(0, 0.0, 2, 1000) == statistical.FIRST_CHUNK * 2
    assert statistical._chunk_size(10, 5.0, 2, 1000) == int(statistical.CHUNK_S * 2)
    assert statistical._chunk_size(10, 5.0, 2, 3) == 3  # never past the end
    assert statistical._chunk_size(10, 1e6, 4, 100) == 4  # at least one series per job


def test_forecast_all_runs_baselines_and_statistical_candidates_together():
    histories = _histories()[:5]
    names = ["naive", "ets", "seasonal_naive", "croston"]
    got = forecast_all(names, histories[:2], 6, SEASON)
    assert list(got) == names
    for name in names:
        ref = np.stack([FORECASTERS[name](h, 6, SEASON) for h in histories[:2]])
        np.testing.assert_allclose(got[name], ref, rtol=1e-6)
    assert forecast_all(["ets"], [], 6, SEASON)["ets"].shape == (0, 6)
    with pytest.raises(ValueError, match="not a forecaster"):
        forecast_all(["arima"], histories, 6, SEASON)
    with pytest.raises(ValueError, match="not a statistical candidate"):
        forecast_many(["naive"], histories, 6, SEASON)


# ---------------------------------------------------------------- registration
def test_candidates_are_scored_only_when_listed():
    assert set(STATISTICAL) <= set(FORECASTERS)
    assert scored_models(("naive", "seasonal_naive", "drift")) == MODELS
    assert scored_models(("theta", "naive")) == (*MODELS, "theta")
    assert scored_models(("ets", "theta")) == (*MODELS, "ets", "theta")
    assert scored_models(("tsb", "croston")) == (*MODELS, "croston", "tsb")


def test_the_config_accepts_exactly_the_registered_candidates():
    field = EvaluateConfig.model_fields["candidates"].annotation
    listed, auto = typing.get_args(field)  # a tuple of names, or "auto"
    (literal, _) = typing.get_args(listed)
    assert set(typing.get_args(literal)) == set(FORECASTERS) | set(COMBINATIONS)
    assert typing.get_args(auto) == ("auto",)
    cfg = parse_config({"evaluate": {"candidates": ["naive", "croston", "adida", "tsb"]}})
    assert cfg.evaluate.candidates == ("naive", "croston", "adida", "tsb")

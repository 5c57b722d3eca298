"""The statistical candidates (tasks/evaluation/statistical.py): statsforecast's AutoETS and
AutoTheta with the baselines' signature; a fit that cannot be made forecasts the last value, as
naive does."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluation.baselines import FORECASTERS, MODELS, scored_models
from tasks.evaluation.statistical import STATISTICAL, ets, theta

SEASON = 12


def _trend_season(n: int) -> np.ndarray:
    t = np.arange(n)
    return (100.0 + 3.0 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / SEASON))


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


@pytest.mark.parametrize("fn", [ets, theta])
def test_short_or_unfittable_histories_forecast_the_last_value(fn):
    # Shorter than two seasons: the non-seasonal model; a NaN inside: no fit, the last value.
    assert np.isfinite(fn(_trend_season(18), 4, SEASON)).all()
    np.testing.assert_array_equal(fn([1.0, np.nan, 3.0, 4.0, 5.0, 6.0], 3, 1), [6.0] * 3)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        fn([], 3, SEASON)


def test_candidates_are_scored_only_when_listed():
    assert set(STATISTICAL) <= set(FORECASTERS)
    assert scored_models(("naive", "seasonal_naive", "drift")) == MODELS
    assert scored_models(("theta", "naive")) == (*MODELS, "theta")
    assert scored_models(("ets", "theta")) == (*MODELS, "ets", "theta")

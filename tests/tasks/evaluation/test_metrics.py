"""Metrics and baselines against numbers worked out by hand."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest

from tasks.config import GateConfig
from tasks.evaluation.baselines import BASELINES, MODELS, drift, naive, seasonal_naive
from tasks.evaluation.gate import DIRECTION
from tasks.evaluation.metrics import METRICS, mae, mase, rmse, score, smape

Y = [1.0, 2.0, 3.0, 4.0]
P = [2.0, 2.0, 2.0, 2.0]  # errors y - p: -1, 0, 1, 2


def test_rmse_by_hand():
    assert rmse(Y, P) == pytest.approx(math.sqrt((1 + 0 + 1 + 4) / 4))


def test_mae_by_hand():
    assert mae(Y, P) == pytest.approx(1.0)


def test_smape_by_hand():
    # |y - p| / (|y| + |p|): 1/3, 0/4, 1/5, 2/6
    assert smape(Y, P) == pytest.approx(200 * (1 / 3 + 0 + 1 / 5 + 2 / 6) / 4)


def test_smape_zero_over_zero_counts_zero():
    # terms: 0/0 -> 0, |1-3| / (1+3) = 0.5
    assert smape([0.0, 1.0], [0.0, 3.0]) == pytest.approx(50.0)


def test_smape_bounds():
    assert smape([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert smape([1.0, -1.0], [0.0, 0.0]) == pytest.approx(200.0)


def test_mase_on_tiny_seasonal_series():
    insample = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0]
    # season 2: |2-1|, |5-3|, |4-2|, |6-5| = 1, 2, 2, 1 -> scale 1.5; forecast MAE = 1
    assert mase([5.0, 7.0], [4.0, 8.0], insample, season_length=2) == pytest.approx(1 / 1.5)


@pytest.mark.parametrize("insample", [[5.0, 5.0, 5.0, 5.0], [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]])
def test_mase_constant_series_is_undefined(insample):
    with pytest.raises(ValueError, match="constant over its training part"):
        mase([1.0, 2.0], [1.0, 2.0], insample, season_length=2)


def test_mase_needs_more_than_a_season_of_history():
    with pytest.raises(ValueError, match="season_length=4"):
        mase([1.0], [1.0], [1.0, 2.0, 3.0], season_length=4)


def test_non_finite_predictions_are_counted():
    with pytest.raises(ValueError, match=r"1 NaN and 2 inf of 4"):
        rmse([1.0, 2.0, 3.0, 4.0], [np.nan, np.inf, -np.inf, 1.0])


def test_non_finite_predictions_fail_every_metric():
    for fn in (rmse, mae, smape):
        with pytest.raises(ValueError, match="non-finite"):
            fn([1.0], [np.nan])
    with pytest.raises(ValueError, match="non-finite"):
        mase([1.0], [np.nan], [1.0, 2.0, 4.0], season_length=1)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        mae([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="1-D"):
        mae([[1.0]], [[1.0]])


def test_score_returns_every_metric():
    insample = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0]
    result = score([5.0, 7.0], [4.0, 8.0], insample, season_length=2)
    assert set(result) == {"rmse", "mae", "smape", "mase"}
    assert result["rmse"] == pytest.approx(1.0)
    assert result["mae"] == pytest.approx(1.0)
    assert result["smape"] == pytest.approx(200 * (1 / 9 + 1 / 15) / 2)
    assert result["mase"] == pytest.approx(1 / 1.5)
    assert all(type(v) is float for v in result.values())


# ---------------------------------------------------------------- baselines
def test_naive_repeats_last_value():
    np.testing.assert_array_equal(naive([1.0, 2.0, 3.0], 2), [3.0, 3.0])


def test_seasonal_naive_within_one_season():
    np.testing.assert_array_equal(seasonal_naive([1, 2, 3, 4, 5, 6], 2, 3), [4.0, 5.0])


def test_seasonal_naive_tiles_for_long_horizons():
    np.testing.assert_array_equal(seasonal_naive([1, 2, 3, 4, 5], 5, 2), [4, 5, 4, 5, 4])


def test_seasonal_naive_needs_a_full_season():
    with pytest.raises(ValueError, match="shorter than one season"):
        seasonal_naive([1.0, 2.0], 3, season_length=3)


def test_drift_extends_first_to_last_line():
    np.testing.assert_allclose(drift([1.0, 3.0, 5.0], 2), [7.0, 9.0])


def test_drift_of_one_value_is_naive():
    np.testing.assert_array_equal(drift([4.0], 3), [4.0, 4.0, 4.0])


@pytest.mark.parametrize("fn", [naive, drift])
def test_baselines_reject_bad_input(fn):
    with pytest.raises(ValueError, match="empty"):
        fn([], 1)
    with pytest.raises(ValueError, match="horizon"):
        fn([1.0], 0)


# ---------------------------------------------------------------- the registries
def test_registries_list_every_metric_and_baseline_in_report_order():
    assert list(METRICS) == ["rmse", "mae", "smape", "mase"]
    assert MODELS == ("lstm", "naive", "seasonal_naive", "drift")
    history = np.array([1.0, 3.0, 2.0, 4.0, 5.0, 7.0])
    np.testing.assert_array_equal(BASELINES["naive"](history, 3, 2), naive(history, 3))
    np.testing.assert_array_equal(BASELINES["drift"](history, 3, 2), drift(history, 3))
    np.testing.assert_array_equal(
        BASELINES["seasonal_naive"](history, 3, 2), seasonal_naive(history, 3, 2)
    )


def test_score_is_every_registered_metric():
    y, p, insample = np.array([3.0, 5.0]), np.array([2.0, 6.0]), np.array([1.0, 2.0, 4.0, 3.0])
    s = score(y, p, insample, 2)
    assert list(s) == list(METRICS)
    assert s["mase"] == mase(y, p, insample, 2)
    assert s["rmse"] == rmse(y, p) and s["mae"] == mae(y, p) and s["smape"] == smape(y, p)


def test_the_gate_metric_choices_and_directions_are_the_registry():
    # config.py does not import tasks.evaluation.metrics (every stage reads the config): kept equal
    # here.
    assert set(get_args(GateConfig.model_fields["metric"].annotation)) == set(METRICS)
    assert set(DIRECTION) == set(METRICS)

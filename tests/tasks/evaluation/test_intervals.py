"""Conformal intervals: the finite-sample rank, pooling when residuals are few, the backtest
coverage, and bands mapped back to original units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.evaluation.intervals import (
    Calibration,
    calibrate,
    conformal_quantile,
    coverage,
    min_residuals,
)


@pytest.mark.parametrize(("level", "n"), [(80, 4), (90, 9), (95, 19), (50, 1)])
def test_min_residuals_is_the_smallest_n_with_a_finite_rank(level, n):
    assert min_residuals(level) == n
    assert math.ceil((n + 1) * level / 100) <= n
    if n > 1:
        assert math.ceil(n * level / 100) > n - 1


def test_conformal_quantile_takes_the_finite_sample_rank():
    r = np.arange(1.0, 20.0)  # 19 residuals: rank ceil(20 * 0.8) = 16 -> value 16
    assert conformal_quantile(r, 80) == (16.0, True)
    assert conformal_quantile(r, 95) == (19.0, True)  # rank 19 of 19
    # 18 residuals cannot give a 95 % rank: the largest, flagged inexact
    assert conformal_quantile(r[:-1], 95) == (18.0, False)
    with pytest.raises(ValueError, match="no residuals"):
        conformal_quantile(np.array([]), 80)


def test_enough_residuals_per_step_are_not_pooled():
    rng = np.random.default_rng(0)
    res = rng.normal(size=(40, 5)) * np.arange(1, 6)  # error grows with the horizon step
    cal = calibrate(res, (80, 95))
    assert cal.pooled_steps == {80: 1, 95: 1}
    assert cal.exact == {80: True, 95: True}
    for h in range(5):
        assert cal.widths[80][h] == conformal_quantile(np.abs(res[:, h]), 80)[0]
    assert np.all(cal.widths[95] >= cal.widths[80])
    assert cal.widths[80][4] > cal.widths[80][0]


def test_few_residuals_pool_neighbouring_steps():
    res = np.arange(1.0, 3 * 24 + 1).reshape(3, 24)  # 3 folds x 1 series, horizon 24
    cal = calibrate(res, (80, 95))
    assert cal.residuals_per_step == 3
    assert cal.pooled_steps == {80: 2, 95: 7}  # 6 >= 4 and 21 >= 19 residuals
    assert cal.exact == {80: True, 95: True}
    # step 1 pools steps 1-2 (an edge), the 95 % width of step 1 the first 7 steps
    assert cal.widths[80][0] == conformal_quantile(np.abs(res[:, :2]), 80)[0]
    assert cal.widths[95][0] == conformal_quantile(np.abs(res[:, :7]), 95)[0]
    assert cal.widths[95][10] == conformal_quantile(np.abs(res[:, 7:14]), 95)[0]


def test_too_few_residuals_overall_fall_back_to_the_largest_and_say_so():
    cal = calibrate(np.array([[0.1, -0.3, 0.2, 0.05]]), (80, 95))  # 4 residuals in all
    assert cal.exact == {80: True, 95: False}  # 4 suffice for 80 %, 95 % needs 19
    assert cal.pooled_steps == {80: 4, 95: 4}
    np.testing.assert_allclose(cal.widths[80], 0.3)  # rank ceil(5 * 0.8) = 4 of 4
    np.testing.assert_allclose(cal.widths[95], 0.3)


def test_calibration_round_trips_through_json():
    cal = calibrate(np.random.default_rng(1).normal(size=(6, 4)), (80, 95))
    back = Calibration.from_json(cal.to_json())
    assert back.levels == cal.levels and back.exact == cal.exact
    for lv in cal.levels:
        np.testing.assert_array_equal(back.widths[lv], cal.widths[lv])


def test_leave_one_fold_out_coverage_is_close_to_nominal_on_exchangeable_errors():
    rng = np.random.default_rng(2)
    res = rng.normal(size=(10, 20, 6))  # 10 folds, 20 series, horizon 6
    cov = coverage(res, (80, 95))
    assert cov["method"] == "leave-one-fold-out"
    assert cov["overall"][80] == pytest.approx(0.80, abs=0.04)
    assert cov["overall"][95] == pytest.approx(0.95, abs=0.03)
    assert len(cov["per_fold"]) == 10


def test_coverage_catches_intervals_that_are_too_narrow():
    # Errors grow over the folds: widths from the calm folds under-cover the wild one.
    res = np.ones((3, 4, 5))
    res[0] *= 10.0
    cov = coverage(res, (80,))
    assert cov["per_fold"][0][80] == 0.0
    assert cov["per_fold"][1][80] == 1.0


def test_one_fold_reports_in_sample_coverage():
    cov = coverage(np.random.default_rng(3).normal(size=(1, 30, 4)), (80,))
    assert cov["method"].startswith("in-sample")
    assert cov["overall"] == cov["in_sample"]

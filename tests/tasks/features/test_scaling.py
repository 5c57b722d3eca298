"""SeriesTransform: `auto` takes the log of positive series and asinh(y / c) of the others, per
series; round trips, zeros and negative forecasts, freedom from the unit, and the saved state."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.features.scaling import SeriesTransform, asinh_scale, choose_kind

RNG = np.random.default_rng(0)
POSITIVE = 100 + 20 * np.sin(np.arange(48) * 2 * np.pi / 12) + RNG.normal(0, 2, 48)
# Intermittent demand: mostly zeros, now and then a few units.
INTERMITTENT = np.where(RNG.random(48) < 0.6, 0.0, RNG.integers(1, 9, 48)).astype(float)


def fitted(transform: str = "auto", **series: np.ndarray) -> SeriesTransform:
    t = SeriesTransform(transform, "standard")
    for sid, values in series.items():
        t.fit(sid, values[:-12], domain=values)
    return t


def test_auto_picks_per_series():
    t = fitted(pos=POSITIVE, zeros=INTERMITTENT)
    assert t.kind("pos") == "log" and t.kind("zeros") == "asinh"
    assert t.counts() == {"log": 1, "asinh": 1}
    assert choose_kind(np.array([1.0, 0.0])) == "asinh"
    assert choose_kind(np.array([-1.0, 2.0])) == "asinh"


def test_the_whole_series_decides_not_only_the_training_part():
    # A zero in the test tail only: the log could not score it, so the series gets asinh.
    late_zero = POSITIVE.copy()
    late_zero[-1] = 0.0
    t = fitted(s=late_zero)
    assert t.kind("s") == "asinh"
    assert np.isfinite(t.transform("s", late_zero)).all()


@pytest.mark.parametrize("values", [POSITIVE, INTERMITTENT], ids=["positive", "intermittent"])
def test_round_trip(values):
    t = fitted(s=values)
    z = t.transform("s", values)
    assert np.isfinite(z).all()
    np.testing.assert_allclose(t.inverse("s", z), values, rtol=1e-9, atol=1e-9)


def test_log_kind_equals_the_plain_log_transform():
    # auto on a positive series is exactly what `transform: log` gave before.
    auto, log = fitted("auto", s=POSITIVE), fitted("log", s=POSITIVE)
    np.testing.assert_array_equal(auto.transform("s", POSITIVE), log.transform("s", POSITIVE))


def test_asinh_is_free_of_the_unit():
    # The same series in thousands transforms to the same scaled values (c scales with it).
    a, b = fitted(s=INTERMITTENT), fitted(s=INTERMITTENT * 1000.0)
    np.testing.assert_allclose(
        a.transform("s", INTERMITTENT), b.transform("s", INTERMITTENT * 1000.0), rtol=1e-9
    )
    assert asinh_scale(np.array([0.0, 0.0])) == 1.0
    assert asinh_scale(np.array([0.0, 3.0, -2.0])) == 2.0


def test_asinh_takes_a_negative_forecast_and_clips_nonnegative_data_at_zero():
    t = fitted(s=INTERMITTENT)
    z = t.transform("s", np.array([-5.0, 0.0, 4.0]))  # a baseline below zero (drift)
    assert np.isfinite(z).all()
    back = t.inverse("s", z)
    assert back[0] == 0.0 and back[1] == pytest.approx(0.0) and back[2] == pytest.approx(4.0)
    # data that may be negative is not clipped
    signed = INTERMITTENT - 3.0
    s = fitted(s=signed)
    np.testing.assert_allclose(s.inverse("s", s.transform("s", signed)), signed, atol=1e-9)


def test_saved_state_keeps_the_kinds(tmp_path):
    t = fitted(pos=POSITIVE, zeros=INTERMITTENT)
    t.save(tmp_path / "scaler.npz")
    back = SeriesTransform.load(tmp_path / "scaler.npz")
    assert back.transform_name == "auto" and back.kinds == t.kinds
    for sid, values in (("pos", POSITIVE), ("zeros", INTERMITTENT)):
        np.testing.assert_array_equal(back.transform(sid, values), t.transform(sid, values))


def test_a_file_from_before_per_series_kinds_loads_as_its_transform(tmp_path):
    t = fitted("log", s=POSITIVE)
    t.kinds, t.asinh_scales, t.nonnegative = {}, {}, {}  # what an older file held
    t.save(tmp_path / "scaler.npz")
    back = SeriesTransform.load(tmp_path / "scaler.npz")
    assert back.kind("s") == "log"


def test_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="unknown transform 'sqrt'"):
        SeriesTransform("sqrt")


def test_prepare_gives_each_series_its_kind_and_keeps_it_through_a_save(tmp_path):
    from datetime import datetime

    import polars as pl

    from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
    from tasks.config import parse_config
    from tasks.features.prepare import Prepared, prepare

    stamps = pl.datetime_range(
        datetime(2000, 1, 1), datetime(2003, 12, 1), "1mo", eager=True, time_unit="us"
    )
    frame = pl.concat(
        pl.DataFrame({SERIES_ID: [sid] * 48, TIMESTAMP: stamps, VALUE: values})
        for sid, values in (("pos", POSITIVE), ("zeros", INTERMITTENT))
    )
    cfg = parse_config({"forecast": {"horizon": 6}, "prepare": {"lookback": 12}})
    assert cfg.prepare.transform == "auto"  # the default
    p = prepare(frame, cfg)
    assert p.summary()["transforms"] == {"log": 1, "asinh": 1}
    assert np.isfinite(p.values).all()
    p.save_arrays(tmp_path / "prepared.npz")
    p.transform.save(tmp_path / "scaler.npz")
    back = Prepared.load(tmp_path / "prepared.npz", tmp_path / "scaler.npz")
    assert back.transform.kinds == {"pos": "log", "zeros": "asinh"}
    np.testing.assert_allclose(back.to_original(1, back.values[back.series(1)]), INTERMITTENT,
                               atol=1e-4)  # fmt: skip


@pytest.mark.parametrize("scaler", ["standard", "minmax", "robust"])
def test_the_fast_path_equals_scikit_learns_transform_to_the_last_bit(scaler):
    # SeriesTransform applies the fitted scalers' arithmetic itself (scikit-learn's validation
    # cost about 1 ms a call); the values must be exactly scikit-learn's.
    rng = np.random.default_rng(3)
    t = SeriesTransform("asinh", scaler).fit("s", rng.normal(50, 20, 40))
    z = rng.normal(0, 30, 25)
    forward = t._forward("s", z)
    fitted = t.scalers["s"]
    expected = fitted.transform(forward.reshape(-1, 1)).ravel()
    assert np.array_equal(t.transform("s", z), expected)
    back = fitted.inverse_transform(expected.reshape(-1, 1)).ravel()
    assert np.array_equal(t.inverse("s", expected), t._backward("s", back))

"""State files load without running code (issue: a planted pickle ran os.system)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from tasks import safe_state
from tasks.features.scaling import SeriesTransform


class _Payload:
    """What an attacker plants: unpickling it calls `touch` on a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_nested_state_round_trips_exactly(tmp_path: Path):
    state = {
        "epoch": 3,
        "stopped": False,
        "best": math.inf,
        "weights": [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.5])],
        "callbacks": {"early_stopping": {"best_weights": None, "wait": np.int64(2)}},
        "history": [{"loss": 0.25}],
        "shape": (2, 3),
    }
    safe_state.save(tmp_path / "s.npz", state)
    back = safe_state.load(tmp_path / "s.npz")
    assert back["weights"][0].dtype == np.float32
    assert np.array_equal(back["weights"][0], state["weights"][0])
    assert back["best"] == math.inf and back["shape"] == (2, 3)
    assert back["callbacks"]["early_stopping"] == {"best_weights": None, "wait": 2}
    assert back["history"] == [{"loss": 0.25}] and back["epoch"] == 3


@pytest.mark.parametrize("scaler", ["standard", "minmax", "robust"])
def test_scaler_round_trips_to_the_same_numbers(tmp_path: Path, scaler: str):
    rng = np.random.default_rng(0)
    t = SeriesTransform("log", scaler)
    for sid in ("a", "b"):
        t.fit(sid, rng.uniform(1, 100, 50))
    t.save(tmp_path / "scaler.npz")
    back = SeriesTransform.load(tmp_path / "scaler.npz")
    y = rng.uniform(1, 100, 20)
    for sid in ("a", "b"):
        assert np.array_equal(back.transform(sid, y), t.transform(sid, y))
        assert np.array_equal(
            back.inverse(sid, t.transform(sid, y)), t.inverse(sid, t.transform(sid, y))
        )


@pytest.mark.parametrize("loader", [safe_state.load, SeriesTransform.load])
def test_a_planted_pickle_is_refused_and_runs_nothing(tmp_path: Path, loader):
    marker = tmp_path / "pwned"
    planted = tmp_path / "scaler.npz"
    planted.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(safe_state.UnsafeOrCorruptState, match="not a state file"):
        loader(planted)
    assert not marker.exists()
    # An .npz holding a pickled object array is refused too (allow_pickle=False).
    with open(planted, "wb") as fh:
        np.savez(fh, __tree__=np.array("{}"), a0=np.array([_Payload(marker)], dtype=object))
    with pytest.raises(safe_state.UnsafeOrCorruptState):
        loader(planted)
    assert not marker.exists()

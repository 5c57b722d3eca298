"""Real training on a tiny synthetic seasonal series: result contents, loss going down.
(2-replica bit-reproducibility is checked in test_strategy.py, in the process that also checks
the 2-replica batch split.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import polars as pl
import pytest

from tasks.config import parse_config
from tasks.prepare import prepare

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "forecast": {"horizon": 12},
    "prepare": {"lookback": 24, "validation_steps": 12},
    "model": {"units": [8], "dropout": 0.0},
    "training": {
        "epochs": 12,
        "batch_size": 16,
        "learning_rate": 0.01,
        "patience": 50,
        "lr_patience": 50,
        "ensemble": 2,
        "replicas": 1,
    },
}


def seasonal_frame(n: int = 240, seed: int = 0) -> pl.DataFrame:
    """Monthly trend x multiplicative season x noise: AirPassengers-like, positive."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    value = 100 * np.exp(0.01 * t + 0.2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.03, n))
    stamps = pl.date_range(
        pl.date(2000, 1, 1), pl.date(2000, 1, 1).dt.offset_by(f"{n - 1}mo"), "1mo", eager=True
    )
    return pl.DataFrame({"series_id": ["s"] * n, "timestamp": stamps, "value": value})


def tiny_config(**training):
    raw = {k: dict(v) for k, v in TINY.items()}
    raw["training"].update(training)
    return parse_config(raw)


def test_splitting_the_cpu_too_late_raises():
    script = (
        "import tensorflow as tf; tf.constant(1.0)\n"  # initialises the runtime with 1 CPU
        "from tasks.strategy import make_strategy\n"
        "assert make_strategy(1).num_replicas_in_sync == 1\n"  # one replica still works
        "make_strategy(2)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 1
    assert "set training.replicas before TensorFlow initialises (run in a fresh process)" in (
        proc.stderr
    )


@pytest.mark.slow
def test_train_returns_ensemble_history_and_summary(tmp_path: Path):
    from tasks.train import train

    cfg = tiny_config()
    prepared = prepare(seasonal_frame(), cfg)
    result = train(prepared, cfg, checkpoint_dir=tmp_path / "ckpt")

    h = result.history
    assert h.columns == ["member", "epoch", "loss", "val_loss", "learning_rate"]
    assert h["member"].unique().sort().to_list() == [0, 1]
    assert h.filter(pl.col("member") == 0)["epoch"].to_list() == list(range(1, 13))
    assert h["learning_rate"].to_list()[0] == pytest.approx(0.01)
    for m in (0, 1):
        loss = h.filter(pl.col("member") == m)["loss"].to_list()
        assert loss[-1] < 0.5 * loss[0]  # training reduces the loss

    s = result.summary
    assert s["epochs"] == [12, 12]
    assert s["replicas"] == 1
    assert s["train_windows"] == prepared.train_starts.size == 181
    assert s["val_windows"] == prepared.val_starts.size == 12
    assert s["best_val_loss"] == pytest.approx(
        h.group_by("member").agg(pl.col("val_loss").min()).sort("member")["val_loss"].to_list()
    )
    assert s["seconds"] > 0
    json.dumps(s)  # JSON-able

    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "member_0.weights.h5",
        "member_1.weights.h5",
    ]
    # The ensemble is the mean of two different members and survives a .keras round trip.
    x = prepared.geometry.inputs(prepared.values, prepared.val_starts)
    members = [result.model.get_layer(f"member_{i}") for i in (0, 1)]
    outs = [np.asarray(m.predict(x, verbose=0)) for m in members]
    pred = np.asarray(result.model.predict(x, verbose=0))
    assert pred.shape == (12, 12)
    assert np.abs(outs[0] - outs[1]).max() > 1e-4
    np.testing.assert_allclose(pred, np.mean(outs, axis=0), rtol=1e-5, atol=1e-6)
    result.model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), pred)
    # Better than seasonal naive on the validation windows (the model learnt the trend).
    y = prepared.geometry.targets(prepared.values, prepared.val_starts)
    naive = np.tile(x[:, -12:, 0], (1, 1))
    assert np.mean((pred - y) ** 2) < np.mean((naive - y) ** 2)

"""Two workers on 127.0.0.1 (MultiWorkerMirroredStrategy, TF_CONFIG) train together through
`python -m flows.multiworker`: both finish, their final weights are identical, the chief alone
writes the model, and evaluate/publish can load it and forecast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tasks.prepare import Prepared, prepare
from tests.tasks.test_train import TINY, seasonal_frame

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_workers_train_identically_and_the_chief_writes_a_usable_model(tmp_path: Path):
    from tasks.config import parse_config

    raw = {k: dict(v) for k, v in TINY.items()}
    raw["training"].update(epochs=4, ensemble=1, workers=2)
    cfg = parse_config(raw)
    prepared = prepare(seasonal_frame(), cfg)
    prepared.save_arrays(tmp_path / "arrays.npz")
    prepared.transform.save(tmp_path / "scaler.pkl")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))

    cmd = [sys.executable, "-m", "flows.multiworker",  # --workers from training.workers
           "--params", str(tmp_path / "params.yaml"),
           "--prepared", str(tmp_path / "arrays.npz"), "--scaler", str(tmp_path / "scaler.pkl"),
           "--model", str(tmp_path / "model.keras"), "--checkpoints", str(tmp_path / "ckpt"),
           "--weights-out", str(tmp_path / "weights"), "--no-outputs",
           "--timeout", "240"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]

    w0 = np.load(tmp_path / "weights" / "worker_0.npz")
    w1 = np.load(tmp_path / "weights" / "worker_1.npz")
    assert len(w0.files) == len(w1.files) > 0
    assert all(np.array_equal(w0[k], w1[k]) for k in w0.files)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["worker_0", "worker_1"]
    assert list(tmp_path.glob("*.keras")) == [tmp_path / "model.keras"]  # the chief's only

    # The stage consumers load it and forecast, as after a single-process train stage.
    from tasks.forecast import load_model
    from tasks.publish import future_forecasts

    model = load_model(tmp_path / "model.keras")
    loaded = Prepared.load(tmp_path / "arrays.npz", tmp_path / "scaler.pkl")
    np.testing.assert_array_equal(model.get_weights()[0], w0[w0.files[0]])
    forecasts = future_forecasts(loaded, model, "1mo")
    assert forecasts.height == 12 and forecasts["forecast"].is_finite().all()
    x = loaded.geometry.inputs(loaded.values, loaded.test_starts)
    assert np.isfinite(np.asarray(model.predict(x, verbose=0))).all()

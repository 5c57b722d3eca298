"""`training.mixed_precision` through `tasks.model.train.train`: the recurrent layers compute in
half precision, the head and the forecasts stay float32, training still learns, the forecasts match
full-precision arithmetic on the same weights within half precision's error, and the process's
global Keras dtype policy is left at float32 for whatever runs next."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from tasks.features.prepare import prepare
from tasks.model.forecast import model_inputs
from tasks.model.train import build_member, train
from tests.tasks.model.test_train import seasonal_frame, tiny_config

# Largest forecast difference (scaled units, i.e. standard deviations of the series) from the
# float32 computation with the same weights: bfloat16 keeps 8 significant bits, float16 11.
# Measured here: 3e-4 and 3e-5 (the float32 seasonal base carries most of each forecast).
TOLERANCE = {"mixed_bfloat16": 1e-2, "mixed_float16": 2e-3}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training(precision: str, tmp_path: Path):
    half = precision.removeprefix("mixed_")
    assert keras.config.dtype_policy().name == "float32"  # nothing before us changed it
    cfg = tiny_config(mixed_precision=precision, ensemble=1, epochs=8)
    prepared = prepare(seasonal_frame(), cfg)

    result = train(prepared, cfg, checkpoint_dir=tmp_path / "ckpt")

    assert keras.config.dtype_policy().name == "float32"
    model = result.model
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    assert recurrent, [layer.name for layer in model.layers]
    for layer in recurrent:
        assert layer.dtype_policy.name == precision
        assert layer.compute_dtype == half
        assert all(w.dtype == "float32" for w in layer.weights)  # float32 master weights
    assert model.get_layer("head").compute_dtype == "float32"
    assert model.get_layer("head").dtype_policy.name == "float32"
    # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled is (precision == "mixed_float16")

    loss = result.history["loss"].to_numpy()
    assert np.isfinite(loss).all() and np.isfinite(result.summary["best_val_loss"]).all()
    assert loss[-1] < loss[0]  # it learns in half precision

    x = model_inputs(prepared, prepared.test_starts, model)
    forecast = model.predict(x, verbose=0)
    assert forecast.dtype == np.float32
    assert np.isfinite(forecast).all()
    # The same weights computed in float32: half precision moves the forecasts, but little.
    reference = build_member(prepared, tiny_config(ensemble=1))
    reference.set_weights(model.get_weights())
    exact = reference.predict(x, verbose=0)
    diff = np.abs(forecast - exact).max()
    assert 0 < diff <= TOLERANCE[precision]
    # And they forecast the held-out tail: RMSE well under the scaled series' unit deviation
    # (measured: 0.10).
    actual = prepared.geometry.targets(prepared.values, prepared.test_starts)
    assert np.sqrt(np.mean((forecast - actual) ** 2)) < 0.5

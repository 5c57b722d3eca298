"""TFLite (LiteRT) export: the flatbuffer's forecasts match the Keras model's within stated
tolerances (float and dynamic-range int8), and quantization makes it smaller."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.export import FLOAT_TOLERANCE, QUANTIZED_TOLERANCE
from tasks.model.network import ModelSpec, build_model


def _model(**kw):
    model = build_model(
        ModelSpec(lookback=36, horizon=24, units=(32, 16), relative_inputs=True, **kw)
    )
    rng = np.random.default_rng(0)  # a non-trivial head, so more than the seasonal base is tested
    head = model.get_layer("head") if "mode" not in kw else None
    if head is not None:
        head.set_weights(
            [rng.normal(0, 0.3, w.shape).astype("float32") for w in head.get_weights()]
        )
    return model


@pytest.mark.slow
def test_tflite_forecasts_match_keras(tmp_path: Path):
    from tasks.model.export import export_tflite, predict_tflite

    model = _model(attention=True)
    x = np.random.default_rng(1).normal(size=(10, 36, 1)).astype("float32")
    ref = np.asarray(model.predict(x, verbose=0))

    plain = export_tflite(model, tmp_path / "m.tflite")
    quant = export_tflite(model, tmp_path / "m.int8.tflite", quantize=True)
    diff = np.abs(predict_tflite(plain["path"], x) - ref).max()
    qdiff = np.abs(predict_tflite(quant["path"], x) - ref).max()
    assert diff <= FLOAT_TOLERANCE
    assert qdiff <= QUANTIZED_TOLERANCE
    assert qdiff > diff  # quantization does change the numbers: the test can tell them apart
    assert quant["bytes"] < 0.75 * plain["bytes"]
    assert predict_tflite(plain["path"], x[:3]).shape == (3, 24)  # any number of windows

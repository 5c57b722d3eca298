"""Export the trained model to TFLite (LiteRT) for on-device or serverless inference.

`export_tflite` goes through a SavedModel (`model.export`, the Keras 3 route; the converter's
`from_keras_model` targets Keras 2), converts it with the TensorFlow Lite converter bundled in
tensorflow-cpu (no extra package), and with `quantize` applies dynamic-range quantization
(int8 weights, float activations: about 4x smaller weights). The recurrent layers become
TFLite control flow (WHILE) on builtin ops; `predict_tflite` runs the result with the
interpreter so callers can compare it with the Keras model (tests/tasks/test_export.py states
the tolerances). A model with a series embedding (`model.series_embedding` > 0) exports too
(its lookup is a builtin GATHER): the flatbuffer then reads two channels, values and series
index, built by `tasks.forecast.model_inputs` exactly as for the Keras model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def export_tflite(model, path: str | Path, quantize: bool = False, batch: int = 1) -> dict:
    """Write `model` as a .tflite flatbuffer at `path`; returns its size and settings.

    The batch size is fixed (`batch`): the recurrent loop's tensor lists must have a static
    element shape to lower to TFLite builtins (with a dynamic batch the converter would need
    the Flex delegate, i.e. TensorFlow itself, on the device). `predict_tflite` runs any
    number of windows through it `batch` at a time.
    """
    import tensorflow as tf

    path = Path(path)
    shape = (batch, *model.inputs[0].shape[1:])
    with tempfile.TemporaryDirectory(prefix="tflite-export-") as tmp:
        saved = Path(tmp) / "saved_model"
        archive = keras_export_archive(model, shape)
        archive.write_out(str(saved), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        flatbuffer = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.tmp")
    tmp_path.write_bytes(flatbuffer)
    tmp_path.replace(path)
    return {"path": str(path), "bytes": len(flatbuffer), "quantized": quantize}


def keras_export_archive(model, shape: tuple[int, ...]):
    """A SavedModel archive serving `model` on float32 inputs of exactly `shape`."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve", lambda x: model(x, training=False), [tf.TensorSpec(shape, tf.float32)]
    )
    return archive


def predict_tflite(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Forecasts of the .tflite model at `path` for inputs `x` (n, lookback, channels).

    Uses the LiteRT interpreter (ai_edge_litert) when installed, else the one bundled in
    tensorflow-cpu 2.21 (deprecated there in favour of LiteRT, still working).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf

        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        Interpreter = tf.lite.Interpreter  # noqa: N806

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    batch = int(inp["shape"][0])
    x = np.asarray(x, dtype=np.float32)
    channels = int(inp["shape"][-1])
    if x.ndim != 3 or x.shape[-1] != channels:
        # Most likely the values alone for a series-embedding model: say so, not only the shape.
        what = " (values and series index: model.series_embedding > 0)" if channels == 2 else ""
        raise ValueError(
            f"inputs have shape {x.shape}; the model reads (n, lookback, {channels}){what}: "
            "build them with tasks.forecast.model_inputs"
        )
    n = len(x)
    pad = (-n) % batch
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
    outs = []
    for lo in range(0, len(x), batch):
        interpreter.set_tensor(inp["index"], x[lo : lo + batch])
        interpreter.invoke()
        outs.append(np.array(interpreter.get_tensor(out["index"])))
    return np.concatenate(outs)[:n]

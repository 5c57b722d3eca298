"""Export the trained model to TFLite (LiteRT) for on-device or serverless inference.

`export_tflite` goes through a SavedModel (`model.export`, the Keras 3 route; the converter's
`from_keras_model` targets Keras 2), converts it with the TensorFlow Lite converter bundled in
tensorflow-cpu (no extra package), and with `quantize` applies dynamic-range quantization
(int8 weights, float activations: about 4x smaller weights). The recurrent layers become
TFLite control flow (WHILE) on builtin ops; `predict_tflite` runs the result with the
interpreter so callers can compare it with the Keras model (tests/tasks/model/test_export.py states
the tolerances). A model with a series embedding (`model.series_embedding` > 0) exports too
(its lookup is a builtin GATHER): the flatbuffer then reads two channels, values and series
index, built by `tasks.model.forecast.model_inputs` exactly as for the Keras model.
"""

from __future__ import annotations

import re
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
    shapes = [(batch, *t.shape[1:]) for t in model.inputs]
    with tempfile.TemporaryDirectory(prefix="tflite-export-") as tmp:
        saved = Path(tmp) / "saved_model"
        archive = keras_export_archive(model, *shapes)
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


def keras_export_archive(model, *shapes: tuple[int, ...]):
    """A SavedModel archive serving `model` on float32 inputs of exactly `shapes` (one per model
    input: the window, then the future and static covariates when the model reads them). The
    signature's arguments are named x0, x1, ... in the model's input order (`predict_tflite`
    feeds them by name)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = [tf.TensorSpec(s, tf.float32, name=f"x{i}") for i, s in enumerate(shapes)]
    if len(specs) == 1:
        archive.add_endpoint("serve", lambda x0: model(x0, training=False), specs)
    elif len(specs) == 2:
        archive.add_endpoint("serve", lambda x0, x1: model([x0, x1], training=False), specs)
    else:
        archive.add_endpoint("serve", lambda x0, x1, x2: model([x0, x1, x2], training=False), specs)
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
    details = interpreter.get_input_details()
    out = interpreter.get_output_details()[0]
    xs = [np.asarray(a, dtype=np.float32) for a in (x if isinstance(x, list | tuple) else [x])]
    if len(xs) != len(details):
        raise ValueError(
            f"the model reads {len(details)} input(s) (the window, then future and static "
            f"covariates), got {len(xs)}: build them with tasks.model.forecast.model_inputs"
        )
    if len(details) > 1:
        # The signature's arguments are x0, x1, ... (keras_export_archive), in the model's order.
        by_name = {re.search(r"x(\d+)(:\d+)?$", d["name"]).group(1): d for d in details}
        details = [by_name[str(i)] for i in range(len(xs))]
    inp = details[0]
    batch = int(inp["shape"][0])
    channels = int(inp["shape"][-1])
    if xs[0].ndim != 3 or xs[0].shape[-1] != channels:
        # Most likely the values alone for a series-embedding model: say so, not only the shape.
        what = " (values and series index: model.series_embedding > 0)" if channels == 2 else ""
        raise ValueError(
            f"inputs have shape {xs[0].shape}; the model reads (n, lookback, {channels}){what}: "
            "build them with tasks.model.forecast.model_inputs"
        )
    n = len(xs[0])
    pad = (-n) % batch
    if pad:
        xs = [np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) for a in xs]
    outs = []
    for lo in range(0, len(xs[0]), batch):
        for d, a in zip(details, xs, strict=True):
            interpreter.set_tensor(d["index"], a[lo : lo + batch])
        interpreter.invoke()
        outs.append(np.array(interpreter.get_tensor(out["index"])))
    return np.concatenate(outs)[:n]

"""Export the shipped model to TFLite (LiteRT) and check it against the Keras model.

    python -m flows.export [--quantize] [--model models/model_full.keras] [--out ...tflite]

Converts (tasks/model/export.py), then forecasts the prepared data's last window of every series
with both models and prints the largest difference in the scaled space; exits 1 if it exceeds
--tolerance (default 1e-4 float, 2e-2 quantized: the tolerances tests/tasks/model/test_export.py
checks). A missing model, prepared arrays or scaler exits 2 with a message and writes nothing.
Not a DVC stage: an artefact for serving, made on demand. By default from the model publish
ships (`model_full`: refit by evaluate through each series' last observation, tasks/model/refit.py),
not the train stage's `model`, which only the backtest scores: a served flatbuffer forecasts
what the published forecasts say. `--model models/model.keras` exports the train stage's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# `forecast export --help`: for users (the module docstring is for developers).
HELP = """Export the shipped model to TFLite and check it against the Keras model.

    forecast export [--quantize] [--model models/model_full.keras] [--out ...tflite]

Forecasts every series' last window with both models and prints the largest difference; exits 1
if it exceeds --tolerance (default 1e-4 float, 2e-2 quantized), 2 when the model or the prepared
data is missing (run the pipeline first). By default the model publish forecasts with;
`--model models/model.keras` exports the train stage's.
"""

FLOAT_TOLERANCE = 1e-4  # scaled units: float32 TFLite kernels vs Keras (fused ops reorder sums)
QUANTIZED_TOLERANCE = 2e-2  # dynamic-range int8 weights


def main(argv: list[str] | None = None, prog: str = "python -m flows.export") -> int:
    from tasks import catalog

    p = argparse.ArgumentParser(
        prog=prog,
        description=HELP if prog.startswith("forecast") else __doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument(
        "--model",
        type=Path,
        default=catalog.path("model_full"),
        help="default: the shipped model, %(default)s",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="default: beside --model, .tflite (.int8.tflite)"
    )
    p.add_argument("--quantize", action="store_true", help="dynamic-range int8 weights")
    p.add_argument("--batch", type=int, default=1, help="fixed batch size of the flatbuffer")
    p.add_argument("--prepared", type=Path, default=catalog.path("prepared"))
    p.add_argument("--scaler", type=Path, default=catalog.path("scaler"))
    p.add_argument("--tolerance", type=float, default=None)
    # Accepted for the same flags everywhere (flows/cli.py): the output is one JSON line anyway.
    p.add_argument("--json", action="store_true", help="(default) print the result as JSON")
    args = p.parse_args(argv)

    # Checked before TensorFlow is imported, so a missing input costs no time and writes nothing.
    missing = [f"{name} {path}" for name, path in
               (("model", args.model), ("prepared arrays", args.prepared),
                ("scaler", args.scaler)) if not path.is_file()]  # fmt: skip
    if missing:
        print(f"flows.export: nothing exported: no {', no '.join(missing)} (run the pipeline "
              "through evaluate first, which trains and refits the shipped model: dvc repro "
              "evaluate)", file=sys.stderr)  # fmt: skip
        return 2

    import numpy as np

    from tasks.features.prepare import Prepared
    from tasks.model.export import export_tflite, predict_tflite
    from tasks.model.forecast import load_model, model_inputs

    out = args.out or args.model.with_suffix(".int8.tflite" if args.quantize else ".tflite")
    model = load_model(args.model)
    # Every input is read before the flatbuffer is written: a bad one leaves no file behind.
    prepared = Prepared.load(args.prepared, args.scaler)
    info = export_tflite(model, out, quantize=args.quantize, batch=args.batch)
    x = model_inputs(prepared, prepared.forecast_starts, model)
    keras_out = np.asarray(model.predict(x, verbose=0))
    diff = float(np.abs(predict_tflite(out, x) - keras_out).max())
    tol = args.tolerance or (QUANTIZED_TOLERANCE if args.quantize else FLOAT_TOLERANCE)
    series = len(prepared.series_ids)  # x is a list of inputs for a model with covariates
    print(json.dumps({**info, "series": series, "max_abs_diff_scaled": diff, "tolerance": tol}))
    return 0 if diff <= tol else 1


if __name__ == "__main__":
    sys.exit(main())

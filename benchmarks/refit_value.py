"""What the shipped refit is worth: a kept tuning-split run's LSTM forecasts from the refit
(models/model_full.keras, trained through each series' last observation) beside those of the train
stage's model (models/model.keras, trained at the backtest's earliest origin), on the same
latest windows, scored on the held-out horizon (mean MASE over the LSTM series).

A run of `benchmarks/many_series.py --split tuning --keep` gives the project copies; M3's test
period is never read. Issue 22 asks whether the refit's second training can go.

    uv run --extra bench python -m benchmarks.refit_value PROJECT [PROJECT ...]

Writes benchmarks/results/refit_value.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from benchmarks import m3_test
from benchmarks.choice_margin import write_result
from benchmarks.datasets import FREQUENCIES

RESULTS = Path(__file__).resolve().parent / "results" / "refit_value.json"
MODELS = {"refit": "model_full", "train_stage": "model"}


def score(project: Path) -> tuple[str, dict]:
    """(frequency, {model: mean MASE, series}) of a kept tuning-split project."""
    from tasks import catalog
    from tasks.features.prepare import Prepared
    from tasks.model.forecast import forecast_original, load_model

    name = project.name
    spec = FREQUENCIES[name]
    horizon = int(yaml.safe_load((project / "params.yaml").read_text())["forecast"]["horizon"])
    parts = m3_test.m3_series(spec["subset"], split="tuning", horizon=horizon)
    held_out = {sid: test for sid, _train, test in parts}
    scale = m3_test.scales({sid: train for sid, train, _ in parts}, spec["season"])
    prepared = Prepared.load(project / catalog.path("prepared"), project / catalog.path("scaler"))
    ids = prepared.series_ids.astype(str)
    out: dict = {"series": len(ids)}
    for label, key in MODELS.items():
        model = load_model(project / catalog.path(key))
        preds = forecast_original(prepared, model, prepared.forecast_starts)
        out[label] = m3_test.score(dict(zip(ids, preds, strict=True)), held_out, scale)["mase"]
    return name, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="+", type=Path, help="kept many_series project copies")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = dict(score(p) for p in args.projects)
    for name, r in results.items():
        print(f"{name}: LSTM MASE refit {r['refit']} vs train stage's model {r['train_stage']} "
              f"({r['series']} series)")  # fmt: skip
    write_result(args.out, "refit_value", "mean MASE on the held-out horizon", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

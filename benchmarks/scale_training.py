"""Time-to-accuracy: full epochs against `training.windows_per_epoch` sampled ones.

    python -m benchmarks.scale_training                         # 1,000 series x 1,000 steps
    python -m benchmarks.scale_training --series 10000          # the 10k case (~9M windows)
    python -m benchmarks.scale_training --series 200 --steps 400 --out /tmp/x.json   # smoke

Synthetic daily series (benchmarks/scale.py's generator: level x trend x weekly and yearly
seasons x AR(1) noise), prepared once, then trained twice with the same model, seed, batch and
early stopping / learning-rate schedule, each in its own fresh process:

  full      every training window every epoch, at most --full-epochs epochs
  sampled   --windows-per-epoch windows per epoch (without replacement, a new sample each epoch),
            at most as many windows in all as the full run

Each epoch's wall time comes from the train stage's own epoch lines (tasks/model/train.py:
`EpochProgress`), so the figures are what a user watching the log sees. Reported per run: the
val_loss curve against wall time, the time until val_loss is within 1 % of the run's own best
and of the best of both runs, and the backtest MASE of the final model (the evaluate stage's
pure core, tasks/evaluation/evaluate.py, on the last `evaluate.step` steps of every series).
Results: benchmarks/results/scale_training.json (unless --out), one entry per series count
under "cases" (a run replaces only its own count's entry).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale_training.json"
WITHIN = 0.01  # "within 1 % of its best"


def make_config(args: argparse.Namespace, windows_per_epoch: int | None, epochs: int):
    from tasks.config import parse_config

    return parse_config(
        {
            "data": {"frequency": "1d", "season_length": 7, "min_value": 0.0},
            "forecast": {"horizon": args.horizon},
            "prepare": {"lookback": args.lookback, "validation_steps": 14},
            "model": {"units": [32, 16], "dropout": 0.1},
            "training": {
                "epochs": epochs, "batch_size": args.batch_size, "learning_rate": 0.001,
                "patience": args.patience, "lr_patience": max(args.patience // 2, 1),
                "ensemble": 1, "replicas": 1, "resume": False, "mirrored": False,
                "windows_per_epoch": windows_per_epoch,
            },
            "evaluate": {"n_windows": 1, "step": 14},
        }
    )  # fmt: skip


class EpochClock(logging.Handler):
    """Wall time (since training started) of every epoch line the train stage logs."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.start = time.perf_counter()
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if " val_loss " in record.getMessage():
            self.times.append(time.perf_counter() - self.start)


def run_one(args: argparse.Namespace) -> dict:
    """In a fresh process: prepare the generated data, train one variant, backtest it."""
    from benchmarks.scale import run_evaluate
    from tasks.evaluation.evaluate import evaluate
    from tasks.features.prepare import prepare
    from tasks.ingest import read_source, validate
    from tasks.model.train import train

    work = Path(args.workdir)
    per_epoch = None if args.variant == "full" else args.windows_per_epoch
    cfg0 = make_config(args, None, 1)
    prepared = prepare(validate(read_source(work / "series.parquet"), cfg0), cfg0)
    n = int(prepared.train_starts.size)
    # The sampled run gets at most the full run's budget of windows.
    epochs = args.full_epochs if per_epoch is None else max(1, args.full_epochs * n // per_epoch)
    cfg = make_config(args, per_epoch, epochs)
    clock = EpochClock()
    log = logging.getLogger("forecast.train")
    log.setLevel(logging.INFO)
    log.addHandler(clock)
    log.addHandler(logging.StreamHandler(sys.stderr))  # the user's view, while it runs
    result = train(prepared, cfg, checkpoint_dir=work / f"ckpt-{args.variant}")
    fit_s = time.perf_counter() - clock.start
    hist = result.history
    started = time.perf_counter()
    scores = run_evaluate(evaluate, prepared, result.model, cfg)
    return {
        "variant": args.variant,
        "train_windows": n,
        "val_windows": int(prepared.val_starts.size),
        "windows_per_epoch": min(per_epoch or n, n),
        "max_epochs": epochs,
        "epochs_run": hist.height,
        "fit_s": fit_s,
        "epoch_end_s": clock.times,
        "val_loss": hist["val_loss"].to_list(),
        "loss": hist["loss"].to_list(),
        "learning_rate": hist["learning_rate"].to_list(),
        "windows_seen": min(per_epoch or n, n) * hist.height,
        "backtest_s": time.perf_counter() - started,
        "backtest_mase": {
            k: v["mase"] for k, v in scores.items() if isinstance(v, dict) and "mase" in v
        },  # fmt: skip
    }


def time_to(target: float, times: list[float], losses: list[float]) -> float | None:
    """Wall time of the first epoch whose val_loss is at most `target`."""
    for t, v in zip(times, losses, strict=True):
        if v <= target:
            return t
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lookback", type=int, default=36)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--full-epochs", type=int, default=4, help="epochs cap of the full run")
    p.add_argument("--windows-per-epoch", type=int, default=40_000)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.variant:
        print(json.dumps(run_one(args)), flush=True)
        return 0

    from benchmarks.scale import generate

    out = args.out or RESULTS
    runs = {}
    with tempfile.TemporaryDirectory(prefix="scale-training-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        generate(args.series, args.steps, args.seed).write_parquet(work / "series.parquet")
        print(f"generated {args.series} x {args.steps} in {time.perf_counter() - t0:.1f} s",
              flush=True)  # fmt: skip
        for variant in ("sampled", "full"):
            cmd = [sys.executable, "-m", "benchmarks.scale_training", *(argv or sys.argv[1:]),
                   "--variant", variant, "--workdir", str(work)]  # fmt: skip
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
            runs[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    best = min(min(r["val_loss"]) for r in runs.values())
    for r in runs.values():
        own = min(r["val_loss"])
        r["best_val_loss"] = own
        r["time_to_own_best_within_1pct_s"] = time_to(own * (1 + WITHIN), r["epoch_end_s"],
                                                       r["val_loss"])  # fmt: skip
        r["time_to_overall_best_within_1pct_s"] = time_to(best * (1 + WITHIN), r["epoch_end_s"],
                                                           r["val_loss"])  # fmt: skip
    full, sampled = runs["full"], runs["sampled"]
    speedup = None
    if full["time_to_overall_best_within_1pct_s"] and sampled["time_to_overall_best_within_1pct_s"]:
        speedup = (full["time_to_overall_best_within_1pct_s"]
                   / sampled["time_to_overall_best_within_1pct_s"])  # fmt: skip
    result = {
        "benchmark": "scale_training",
        "date": time.strftime("%Y-%m-%d"),
        "data": f"synthetic daily series (benchmarks/scale.py generator), seed {args.seed}",
        "series": args.series,
        "steps": args.steps,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs)",
        "settings": {k: v for k, v in vars(args).items() if k not in ("variant", "workdir", "out")},
        "overall_best_val_loss": best,
        "speedup_to_overall_best_within_1pct": speedup,
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(out.read_text()) if out.exists() else {}
    cases = doc.get("cases", {})
    cases[str(args.series)] = result
    doc = {"benchmark": "scale_training", "date": result["date"],
           "cases": dict(sorted(cases.items(), key=lambda kv: int(kv[0])))}  # fmt: skip
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for name, r in runs.items():
        print(f"{name:>8}: {r['epochs_run']} epochs x {r['windows_per_epoch']:,} windows in "
              f"{r['fit_s']:.0f} s; best val_loss {r['best_val_loss']:.5f}; within 1 % of the "
              f"overall best after {r['time_to_overall_best_within_1pct_s']} s; backtest MASE "
              f"{r['backtest_mase'].get('lstm')}")  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

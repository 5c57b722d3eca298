"""Training throughput on CPU: windows/s for the default strategy and MirroredStrategy with 1 and
2 logical CPU replicas (each in a fresh subprocess: the CPU split must precede TensorFlow's
start), float32 and mixed_bfloat16, plus the per-epoch overhead of mirroring on the tiny bundled
series. No GPU on this machine: the GPU comparison (shared/bench/gpu_lstm_anchor.py) is not run.

    python -m benchmarks.training [--series 60 --steps 1000 --batch-size 256 --epochs 2]

Writes benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "training.json"

CASES = [  # (name, replicas, mirrored, precision)
    ("default strategy, 1 replica", 1, False, "float32"),
    ("MirroredStrategy, 1 CPU replica", 1, True, "float32"),
    ("MirroredStrategy, 2 CPU replicas", 2, True, "float32"),
    ("default strategy, mixed_bfloat16", 1, False, "mixed_bfloat16"),
]


def worker(args: argparse.Namespace) -> dict:
    from tasks.model.strategy import make_strategy

    strategy = make_strategy(args.replicas, mirrored=args.mirrored)  # before TF starts
    import keras
    import numpy as np
    import polars as pl
    import tensorflow as tf

    from tasks.config import parse_config
    from tasks.features.prepare import prepare
    from tasks.model.train import build_member, make_optimizer

    tf.config.experimental.enable_op_determinism()
    if args.tiny:  # the bundled series with the pipeline's geometry: overhead per epoch
        frame = pl.read_csv(ROOT / "data/raw/airpassengers.csv", try_parse_dates=True)
        frame = frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
        raw = {"training": {"batch_size": 16, "mixed_precision": args.precision}}
    else:
        from benchmarks.scale import generate

        frame = generate(args.series, args.steps, seed=0)
        raw = {
            "data": {"frequency": "1d", "season_length": 7},
            "prepare": {"lookback": 36, "validation_steps": 14},
            "training": {"batch_size": args.batch_size, "mixed_precision": args.precision},
        }
    cfg = parse_config(raw)
    prepared = prepare(frame, cfg)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_member(prepared, cfg)
        model.compile(optimizer=make_optimizer(cfg), loss="mse")
    t = cfg.training
    ds, steps = prepared.geometry.epoch_dataset(
        prepared.values, prepared.train_starts, t.batch_size, seed=0, epochs=args.epochs + 1
    )
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    # The tiny case validates every epoch as the train stage does (a validation pass per epoch
    # is where a one-device MirroredStrategy's fixed overhead shows).
    val = (prepared.geometry.dataset(prepared.values, prepared.val_starts, t.batch_size)
           if args.tiny else None)  # fmt: skip
    model.fit(ds, epochs=args.epochs + 1, steps_per_epoch=steps, verbose=0, shuffle=False,
              validation_data=val, callbacks=[Timer()])  # fmt: skip
    windows = int(prepared.train_starts.size)
    timed = times[1:]  # the first epoch traces the step function
    return {
        "replicas": int(strategy.num_replicas_in_sync),
        "strategy": type(strategy).__name__,
        "precision": args.precision,
        "windows_per_epoch": windows,
        "batch_size": t.batch_size,
        "first_epoch_s": times[0],
        "epoch_s": float(np.median(timed)),
        "windows_per_s": windows / float(np.median(timed)),
    }


def spawn(args: argparse.Namespace, replicas: int, mirrored: bool, precision: str, tiny: bool):
    cmd = [sys.executable, "-m", "benchmarks.training", "--worker", "--replicas", str(replicas),
           "--precision", precision, "--series", str(args.series), "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--epochs", str(args.epochs)]  # fmt: skip
    cmd += ["--mirrored"] if mirrored else []
    cmd += ["--tiny"] if tiny else []
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--series", type=int, default=60)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--replicas", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--mirrored", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    started = time.perf_counter()
    print(f"training throughput on CPU ({len(os.sched_getaffinity(0))} cores, no GPU): "
          f"{args.series} series x {args.steps} steps, batch {args.batch_size}")  # fmt: skip
    rows = []
    for name, replicas, mirrored, precision in CASES:
        r = {"name": name, **spawn(args, replicas, mirrored, precision, tiny=False)}
        rows.append(r)
        print(f"  {name:<36} {r['windows_per_s']:>9,.0f} windows/s  ({r['epoch_s']:.2f} s/epoch, "
              f"{r['windows_per_epoch']:,} windows)", flush=True)  # fmt: skip
    print("overhead per epoch on the bundled series (batch 16, with a validation pass):")
    tiny = []
    for name, replicas, mirrored, precision in CASES[:3]:
        r = {"name": name, **spawn(args, replicas, mirrored, precision, tiny=True)}
        tiny.append(r)
        print(f"  {name:<36} {r['epoch_s']:.3f} s/epoch ({r['windows_per_epoch']} windows)",
              flush=True)  # fmt: skip
    overhead = tiny[1]["epoch_s"] - tiny[0]["epoch_s"]
    print(
        f"MirroredStrategy with 1 CPU replica costs {overhead:+.3f} s/epoch over the default "
        "strategy on the tiny data (train + validation pass); training.mirrored: false saves it"
    )
    doc = {
        "benchmark": "training",
        "gpu": "none on this machine: the GPU comparison with shared/bench/gpu_lstm_anchor.py "
        "was not run; on CPU, 2 logical replicas split 2 physical cores that one replica "
        "already uses (TensorFlow's intra-op threads), so no speed-up is expected here",
        "series": args.series, "steps": args.steps, "batch_size": args.batch_size,
        "timed_epochs": args.epochs,
        "results": rows,
        "tiny_bundled_series": tiny,
        "mirrored_1_replica_overhead_s_per_epoch": overhead,
        "machine": {"cpus_usable": len(os.sched_getaffinity(0)),
                    "python": platform.python_version(), "platform": platform.platform()},
        "elapsed_s": time.perf_counter() - started,
    }  # fmt: skip
    write_json(args.out, doc)  # atomic, strict JSON (NaN -> null)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

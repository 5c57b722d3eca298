"""GPU training throughput: windows/s per GPU count and precision. The check to run on a GPU
machine after installing the GPU variant (`FORECAST_GPU=1 ./run.sh true`, or automatically when
`nvidia-smi -L` lists a GPU):

    ./run.sh python -m benchmarks.gpu                       # every GPU count, every precision
    ./run.sh python -m benchmarks.gpu --gpus 1 8 --precisions auto float32

For each count k (1, 2, 4, ... up to every local GPU) and precision it trains the train stage's
model (tasks/model/train.py: `build_member`, `make_optimizer`) under MirroredStrategy over the first
k GPUs on synthetic daily series (benchmarks/scale.py's generator), with the global batch the
train stage uses (tasks/model/strategy.py: `global_batch_size`, per-GPU batch x k), and reports the
median epoch's windows/s after a first (tracing) epoch, plus whether the recurrent layers ran on
cuDNN (their kernel choice is checked on the built layers, tests/tasks/model/test_strategy.py). Each
case runs in a fresh process (one strategy per process). On a machine without a GPU it stops
with a message, unless --allow-cpu (a smoke test of this script: one CPU "device").

Writes benchmarks/results/gpu.json (unless --out).
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")


def worker(args: argparse.Namespace) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks.scale import generate
    from tasks.config import parse_config
    from tasks.features.prepare import prepare
    from tasks.model.strategy import global_batch_size
    from tasks.model.train import build_member, make_optimizer, resolved

    gpus = tf.config.list_physical_devices("GPU")
    devices = [f"/gpu:{i}" for i in range(args.count)] if gpus else ["/cpu:0"]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    cfg = resolved(parse_config({
        "data": {"frequency": "1d", "season_length": 7},
        "prepare": {"lookback": args.lookback, "validation_steps": 14},
        "model": {"units": args.units},
        "training": {"batch_size": args.batch_size, "mixed_precision": args.precision},
    }))  # fmt: skip
    prepared = prepare(generate(args.series, args.steps, seed=0), cfg)
    batch = global_batch_size(cfg.training.batch_size, strategy)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_member(prepared, cfg)
        model.compile(optimizer=make_optimizer(cfg), loss="mse")
    ds, steps = prepared.geometry.epoch_dataset(
        prepared.values, prepared.train_starts, batch, seed=0, epochs=args.epochs + 1,
        per_epoch=args.windows,
    )  # fmt: skip
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(ds, epochs=args.epochs + 1, steps_per_epoch=steps, verbose=0, shuffle=False,
              callbacks=[Timer()])  # fmt: skip
    windows = min(args.windows or prepared.train_starts.size, prepared.train_starts.size)
    epoch_s = float(np.median(times[1:]))
    return {
        "gpus": len(devices) if gpus else 0,
        "devices": devices,
        "precision": cfg.training.mixed_precision,
        "requested_precision": args.precision,
        "global_batch_size": batch,
        "windows_per_epoch": int(windows),
        "first_epoch_s": times[0],
        "epoch_s": epoch_s,
        "windows_per_s": windows / epoch_s,
        "windows_per_s_per_gpu": windows / epoch_s / max(len(devices), 1),
    }


def counts(n: int) -> list[int]:
    """1, 2, 4, ... and n itself."""
    out, k = [], 1
    while k < n:
        out.append(k)
        k *= 2
    return [*out, n] if n else [1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--gpus", type=int, nargs="*", default=None, help="GPU counts (default 1,2,4..N)"
    )
    p.add_argument("--precisions", nargs="*", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--series", type=int, default=2000)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lookback", type=int, default=36)
    p.add_argument("--units", type=int, nargs="+", default=[64, 32])
    p.add_argument("--batch-size", type=int, default=512, help="per GPU (training.batch_size)")
    p.add_argument("--windows", type=int, default=200_000, help="windows per epoch")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after a tracing one)")
    p.add_argument("--allow-cpu", action="store_true", help="smoke-test on a CPU-only machine")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return 0

    probe = subprocess.run(
        [sys.executable, "-c", "import tasks, tensorflow as tf; "
         "print(len(tf.config.list_physical_devices('GPU')), tf.__version__)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    n_gpus, tf_version = probe.stdout.split()
    n_gpus = int(n_gpus)
    if n_gpus == 0 and not args.allow_cpu:
        print("benchmarks.gpu: TensorFlow sees no GPU (the CPU variant, or no driver): install "
              "the GPU variant with `FORECAST_GPU=1 ./run.sh true` on a machine with GPUs; "
              "--allow-cpu runs a smoke test on the CPU", file=sys.stderr)  # fmt: skip
        return 2
    wanted = args.gpus or counts(n_gpus)
    if any(k > max(n_gpus, 1) for k in wanted):
        print(f"benchmarks.gpu: asked for {max(wanted)} GPUs, {n_gpus} present", file=sys.stderr)
        return 2
    passed = [a for a in (argv if argv is not None else sys.argv[1:])
              if a not in ("--allow-cpu",)]  # fmt: skip
    rows = []
    for k in wanted:
        for precision in args.precisions:
            cmd = [sys.executable, "-m", "benchmarks.gpu", *passed, "--worker", "--count", str(k),
                   "--precision", precision]  # fmt: skip
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                rows.append({"gpus": k, "requested_precision": precision,
                             "error": proc.stderr.strip().splitlines()[-1:]})  # fmt: skip
                print(f"{k} GPU(s) {precision}: failed: {proc.stderr[-500:]}", flush=True)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{row['gpus']} GPU(s) {row['precision']:<15} batch {row['global_batch_size']:>6}"
                  f"  {row['windows_per_s']:>10,.0f} windows/s "
                  f"({row['windows_per_s_per_gpu']:,.0f} per GPU)", flush=True)  # fmt: skip
    out = args.out or RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "gpu",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {n_gpus} GPUs",
        "tensorflow": tf_version,
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("worker", "count", "precision", "out")
        },  # fmt: skip
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

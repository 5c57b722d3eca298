"""Scale benchmark: the real stage functions over 10,000 series x 1,000 steps (10M rows).

Generates realistic daily series (level x trend x weekly and yearly seasons x AR(1) noise, one
global model over all of them) and writes them to Parquet in this process, then runs in a fresh
worker process (with the allocator setting of every pipeline entry point, see flows/__init__.py),
as `flows.pipeline` does:

  ingest    tasks.ingest.read_source + tasks.ingest.validate
  prepare   tasks.features.prepare.prepare
  train     tasks.model.train.train, training.epochs = 1 (one pass over every training window)
  evaluate  tasks.evaluation.evaluate.evaluate (the test tail of every series)
  publish   tasks.publishing.forecasts.future_forecasts + tasks.publishing.store.publish_forecasts

and prints rows/s (windows/s for training) and the process's peak memory per stage, sampled from
/proc/self/statm every 10 ms. The memory budget is 3x the raw data (the generated frame's
in-memory size) plus the model, counted as the rise above the process's RSS before the stages
(after imports and TensorFlow's start-up). Results: benchmarks/results/scale.json (full-size run
only, unless --out). Quick run: `python -m benchmarks.scale --series 200 --steps 500`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from flows import JEMALLOC_CONF, JEMALLOC_ENV
from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
DEFAULT_SERIES, DEFAULT_STEPS = 10_000, 1_000
MIB = 1024**2
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / MIB


class PeakSampler:
    """Samples RSS every `interval` s on a thread; `stage()` starts a new per-stage peak."""

    def __init__(self, interval: float = 0.01):
        self.interval, self.peak = interval, rss_mib()
        self.start = self.peak  # RSS when the current stage began: what earlier stages left
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib())
            time.sleep(self.interval)

    def stage(self) -> None:
        self.peak = self.start = rss_mib()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def generate(series: int, steps: int, seed: int):
    """Long frame: series_id s00000.., daily timestamps from 2020-01-01, positive values."""
    import polars as pl

    rng = np.random.default_rng(seed)
    t = np.arange(steps, dtype=np.float64)
    level = np.exp(rng.normal(4.0, 1.0, series))[:, None]
    trend = rng.normal(0.0, 0.0005, series)[:, None]
    weekly = rng.uniform(0.05, 0.3, series)[:, None]
    yearly = rng.uniform(0.0, 0.4, series)[:, None]
    phase = rng.uniform(0, 2 * np.pi, series)[:, None]
    values = np.empty((series, steps), dtype=np.float64)
    chunk = 1000
    for lo in range(0, series, chunk):  # chunked: the noise of 10M points at once is 80 MB more
        hi = min(lo + chunk, series)
        eps = rng.normal(0.0, 0.05, (hi - lo, steps))
        noise = np.empty_like(eps)
        noise[:, 0] = eps[:, 0]
        for i in range(1, steps):  # AR(1), phi 0.6: loop over steps, vectorised over series
            noise[:, i] = 0.6 * noise[:, i - 1] + eps[:, i]
        log_v = (
            trend[lo:hi] * t
            + weekly[lo:hi] * np.sin(2 * np.pi * t / 7 + phase[lo:hi])
            + yearly[lo:hi] * np.sin(2 * np.pi * t / 365.25 + phase[lo:hi])
            + noise
        )
        values[lo:hi] = level[lo:hi] * np.exp(log_v)
    stamps = pl.datetime_range(
        pl.datetime(2020, 1, 1), pl.datetime(2020, 1, 1) + pl.duration(days=steps - 1), "1d",
        time_unit="us", eager=True,
    )  # fmt: skip
    frame = pl.DataFrame(
        {
            "series_id": np.repeat(np.arange(series, dtype=np.int32), steps),
            "timestamp": np.tile(stamps.to_numpy(), series),
            "value": values.reshape(-1),
        }
    ).with_columns(pl.format("s{}", pl.col("series_id").cast(pl.String).str.zfill(5)))
    return frame


def generate_source(args: argparse.Namespace, work: Path) -> dict:
    """Write the generated series to work/series.parquet and describe them in work/source.json.

    Runs in the parent process, so that nothing the generator allocated is resident in the
    worker whose memory is measured: the worker starts from imports and TensorFlow alone.
    """
    t0 = time.perf_counter()
    frame = generate(args.series, args.steps, args.seed)
    source = work / "series.parquet"
    frame.write_parquet(source)
    info = {
        "series": args.series, "steps": args.steps, "rows": frame.height,
        "generate_s": time.perf_counter() - t0,
        "raw_data_mib": frame.select("series_id", "timestamp", "value").estimated_size() / MIB,
        "source_parquet_mib": source.stat().st_size / MIB,
    }  # fmt: skip
    (work / "source.json").write_text(json.dumps(info))
    print(f"generated {info['rows']:,} rows ({info['raw_data_mib']:.0f} MiB in memory) in "
          f"{info['generate_s']:.1f} s", flush=True)  # fmt: skip
    return info


def make_config(args: argparse.Namespace):
    from tasks.config import parse_config

    return parse_config(
        {
            "data": {"frequency": "1d", "season_length": 7, "min_value": 0.0},
            "forecast": {"horizon": args.horizon},
            # Two folds: the fewest the per-series model choice accepts
            # (tasks/evaluation/selection.py).
            "evaluate": {"n_windows": 2, "step": args.horizon},
            "prepare": {"lookback": args.lookback, "validation_steps": 14},
            "model": {"units": [32, 16], "dropout": 0.1},
            "training": {
                "epochs": 1, "batch_size": args.batch_size, "learning_rate": 0.001,
                "ensemble": 1, "replicas": 1, "resume": False,
                "windows_per_epoch": args.windows_per_epoch,
            },
        }
    )  # fmt: skip


def run_evaluate(evaluate, prepared, model, cfg) -> dict:
    """The evaluate stage's pure core with the train stage's model; returns the scores."""
    from tasks.evaluation import backtest

    # The one trained model scores every fold: a throughput figure, not an accuracy claim for
    # the older fold (benchmarks/accuracy.py refits per fold).
    folds = backtest.build_folds(prepared, cfg)
    models = backtest.FoldModels([model] * len(folds), model, [], "scale benchmark")
    return evaluate(folds, models, cfg).scores


def worker(args: argparse.Namespace) -> dict:
    """Runs in its own process (a fresh RSS high-water mark): every stage, one after another."""
    import polars as pl
    import tensorflow as tf

    tf.constant(0.0)  # TensorFlow's runtime start-up belongs to the baseline, not to a stage
    from tasks.config import Config  # noqa: F401
    from tasks.evaluation.baselines import MODELS
    from tasks.evaluation.evaluate import evaluate
    from tasks.features.prepare import prepare
    from tasks.ingest import read_source, validate
    from tasks.model.train import train
    from tasks.publishing.forecasts import future_forecasts
    from tasks.publishing.store import publish_forecasts

    work = Path(args.workdir)
    cfg = make_config(args)
    source = work / "series.parquet"  # written by the parent process: see generate_source
    out: dict = json.loads((work / "source.json").read_text())
    rows = out["rows"]
    gc.collect()
    baseline = rss_mib()
    out["rss_baseline_mib"] = baseline
    print(f"RSS before the stages {baseline:.0f} MiB", file=sys.stderr, flush=True)
    sampler = PeakSampler()
    stages: dict[str, dict] = {}

    def record(name: str, started: float, **figures) -> None:
        seconds = time.perf_counter() - started
        stages[name] = {"seconds": seconds, "rss_start_mib": sampler.start,
                        "rss_peak_mib": sampler.peak, "rss_rise_mib": sampler.peak - baseline,
                        **figures}  # fmt: skip
        rates = ", ".join(f"{k} {v:,.0f}" for k, v in figures.items() if k.endswith("_per_s"))
        print(f"  {name:<9} {seconds:8.1f} s  {rates}  RSS start {sampler.start:,.0f} MiB, "
              f"peak {sampler.peak:,.0f} MiB",
              file=sys.stderr, flush=True)  # fmt: skip
        sampler.stage()

    # ingest
    started = time.perf_counter()
    read = read_source(source)
    t_read = time.perf_counter() - started
    validated = validate(read, cfg)
    del read
    record("ingest", started, rows_per_s=rows / (time.perf_counter() - started),
           read_s=t_read)  # fmt: skip
    # prepare
    started = time.perf_counter()
    prepared = prepare(validated, cfg)
    del validated
    gc.collect()
    record("prepare", started, rows_per_s=rows / (time.perf_counter() - started))
    # train: one epoch over every training window
    started = time.perf_counter()
    result = train(prepared, cfg, checkpoint_dir=work / "checkpoints")
    model = result.model
    secs = time.perf_counter() - started
    # Windows the epoch visited: a sample of the training windows when --windows-per-epoch is set.
    visited = min(prepared.train_starts.size, args.windows_per_epoch or prepared.train_starts.size)
    windows = int(visited + prepared.val_starts.size)
    record("train", started, windows_per_s=windows / secs, rows_per_s=rows / secs,
           train_windows=int(prepared.train_starts.size),
           val_windows=int(prepared.val_starts.size), loss=result.summary["best_val_loss"][0],
           fit_seconds=result.summary["seconds"])  # fmt: skip
    model_path = work / "model.keras"
    model.save(model_path)
    model_mib = sum(int(np.prod(w.shape)) * 4 for w in model.weights) / MIB
    # evaluate
    started = time.perf_counter()
    scores = run_evaluate(evaluate, prepared, model, cfg)
    secs = time.perf_counter() - started
    record("evaluate", started, rows_per_s=rows / secs, series_per_s=args.series / secs,
           scores={k: v for k, v in scores.items()
                   if k in MODELS})  # fmt: skip
    # publish
    started = time.perf_counter()
    forecasts = future_forecasts(prepared, model, cfg.data.frequency)
    t_forecast = time.perf_counter() - started
    lineage = {
        "model_version": "scale-bench", "git_commit": "benchmark", "data_md5": "0" * 32,
        "params_md5": "0" * 32, "model_md5": "0" * 32, "flow_run_id": "benchmark",
        "published_at": "2026-01-01T00:00:00.000000Z", "trained_through": "benchmark",
        "covariates": "{}",
    }  # fmt: skip
    summary = publish_forecasts(forecasts, lineage, work / "store.sqlite", work / "export.parquet")
    secs = time.perf_counter() - started
    record("publish", started, forecast_rows_per_s=forecasts.height / secs,
           series_per_s=args.series / secs, forecast_rows=forecasts.height,
           future_forecasts_s=t_forecast, store_s=secs - t_forecast,
           rows_inserted=summary["rows_inserted"])  # fmt: skip
    sampler.stop()

    peak = max(s["rss_peak_mib"] for s in stages.values())
    out.update(
        stages=stages,
        model_mib=model_mib,
        rss_peak_mib=peak,
        rss_rise_mib=peak - baseline,
        ru_maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        budget_mib=3 * out["raw_data_mib"] + model_mib,
        tensorflow=tf.__version__,
        polars=pl.__version__,
    )
    out["within_budget"] = out["rss_rise_mib"] <= out["budget_mib"]
    return out


def run_worker(args: argparse.Namespace) -> dict | None:
    """Generate the source here, run every stage in a fresh worker process, return its figures."""
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as work:
        cmd = [sys.executable, "-m", "benchmarks.scale", "--worker", "--workdir", work,
               "--series", str(args.series), "--steps", str(args.steps),
               "--lookback", str(args.lookback), "--horizon", str(args.horizon),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed)]  # fmt: skip
        if args.windows_per_epoch is not None:
            cmd += ["--windows-per-epoch", str(args.windows_per_epoch)]
        generate_source(args, Path(work))
        # The worker runs with the allocator setting every pipeline entry point uses (flows/).
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0",
                   **{JEMALLOC_ENV: os.environ.get(JEMALLOC_ENV, JEMALLOC_CONF)})  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(f"worker failed with exit code {proc.returncode}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--series", type=int, default=DEFAULT_SERIES)
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--lookback", type=int, default=36)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=1024, help="global batch for the epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--windows-per-epoch",
        type=int,
        default=None,
        help="training.windows_per_epoch (default: every window); memory is measured the same",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default: results/scale.json, full-size runs only)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    started = time.perf_counter()
    print(
        f"scale benchmark: {args.series:,} series x {args.steps:,} steps "
        f"({args.series * args.steps:,} rows), batch {args.batch_size}, one epoch",
        flush=True,
    )
    res = run_worker(args)
    if res is None:
        return 1
    # The same stages on 20 series x 300 steps (0.1 MiB of data), in a fresh process: what they
    # cost whatever the data size (TensorFlow's training runtime: traced functions, kernels,
    # thread pools), reported beside the data-driven budget rather than hidden in it.
    tiny = run_worker(argparse.Namespace(**{**vars(args), "series": 20, "steps": 300}))
    if tiny is None:
        return 1
    fixed = tiny["rss_rise_mib"]
    res["fixed_cost"] = {
        "series": 20, "steps": 300, "rss_rise_mib": fixed,
        "stages_rise_mib": {k: v["rss_rise_mib"] for k, v in tiny["stages"].items()},
    }  # fmt: skip
    res["budget_with_fixed_cost_mib"] = res["budget_mib"] + fixed
    res["within_budget_with_fixed_cost"] = res["rss_rise_mib"] <= res["budget_with_fixed_cost_mib"]

    print(f"\n{'stage':<10}{'seconds':>9}{'rows/s':>12}{'other':>28}{'RSS peak':>10}{'rise':>8}")
    for name, s in res["stages"].items():
        other = ""
        if "windows_per_s" in s:
            other = f"{s['windows_per_s']:,.0f} windows/s"
        elif "forecast_rows_per_s" in s:
            other = f"{s['forecast_rows_per_s']:,.0f} fc rows/s"
        elif "series_per_s" in s:
            other = f"{s['series_per_s']:,.0f} series/s"
        rows_s = f"{s['rows_per_s']:,.0f}" if "rows_per_s" in s else "-"
        print(f"{name:<10}{s['seconds']:>9.1f}{rows_s:>12}{other:>28}"
              f"{s['rss_peak_mib']:>10,.0f}{s['rss_rise_mib']:>8,.0f}")  # fmt: skip
    print(f"\nraw data {res['raw_data_mib']:.0f} MiB in memory (Parquet "
          f"{res['source_parquet_mib']:.0f} MiB), model {res['model_mib']:.3f} MiB; budget "
          f"3 x raw + model = {res['budget_mib']:.0f} MiB")  # fmt: skip
    print(f"peak RSS {res['rss_peak_mib']:,.0f} MiB = {res['rss_baseline_mib']:,.0f} before the "
          f"stages (Python, polars, TensorFlow) + {res['rss_rise_mib']:,.0f} rise: "
          f"{'within' if res['within_budget'] else 'OVER'} budget")  # fmt: skip
    print(f"fixed cost of the stages on 20 series x 300 steps: {fixed:,.0f} MiB; budget + fixed "
          f"cost = {res['budget_with_fixed_cost_mib']:,.0f} MiB: "
          f"{'within' if res['within_budget_with_fixed_cost'] else 'OVER'}")  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"benchmark took {elapsed:.0f} s")

    full = (args.series, args.steps) == (DEFAULT_SERIES, DEFAULT_STEPS)
    # A sampled epoch is not the full epoch scale.json reports: written only where --out says.
    out = args.out or (RESULTS if full and args.windows_per_epoch is None else None)
    if out is None:
        print("quick run: no JSON written (pass --out to write one)")
        return 0
    doc = {
        "benchmark": "scale",
        **res,
        "lookback": args.lookback, "horizon": args.horizon, "batch_size": args.batch_size,
        "epochs": 1, "windows_per_epoch": args.windows_per_epoch, "seed": args.seed,
        "units": {"time": "seconds", "memory": "MiB (RSS, /proc/self/statm sampled every 10 ms)"},
        "memory_budget": "rss_rise_mib (peak minus RSS before the stages) <= 3 x raw_data_mib "
        "(the generated frame's polars estimated_size) + model_mib; "
        "budget_with_fixed_cost_mib adds fixed_cost.rss_rise_mib, the rise of the same stages "
        "on 20 series x 300 steps in a fresh process (TensorFlow's training runtime)",
        "machine": {"cpus_usable": len(os.sched_getaffinity(0)), "gpu": None,
                    "python": platform.python_version(), "platform": platform.platform()},
        "elapsed_s": elapsed,
    }  # fmt: skip
    write_json(out, doc)  # atomic, strict JSON (NaN -> null)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

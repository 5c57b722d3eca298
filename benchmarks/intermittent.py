"""The intermittent-demand candidates (croston, adida, tsb) against ETS, Theta and the naive
baselines on synthetic series with many zeros, one set per kind of intermittency:

- intermittent: demand in 30 % of the periods, sizes that vary little (1 + Poisson(4));
- lumpy: demand in 20 % of the periods, sizes that vary a lot (1 + Gamma(0.8, 20));
- obsolete: demand in half the periods, then none for the last 24 periods of history and the
  horizon (a product that stopped selling).

Each series holds 96 periods; every candidate forecasts the last 12 from the 84 before
(`tasks.evaluation.baselines.forecast_all`, season 12). Reported per set: mean RMSE and mean
MAE over series, and the seconds each statistical candidate took. The series are seeded, so the
figures repeat exactly. MAE favours forecasting zero (the median of such a series); RMSE the mean
rate that the intermittent models estimate.

    uv run python -m benchmarks.intermittent

Writes benchmarks/results/intermittent.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from tasks.evaluation.baselines import forecast_all

RESULTS = Path("benchmarks/results/intermittent.json")
HORIZON, SEASON, LENGTH = 12, 12, 96
NAMES = ("naive", "seasonal_naive", "ets", "theta", "croston", "adida", "tsb")
STATISTICAL = ("ets", "theta", "croston", "adida", "tsb")


def make_series(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = LENGTH
    if kind == "intermittent":
        return np.where(rng.random(n) < 0.3, rng.poisson(4, n) + 1, 0).astype(np.float64)
    if kind == "lumpy":
        sizes = rng.gamma(0.8, 20, n).round() + 1
        return np.where(rng.random(n) < 0.2, sizes, 0).astype(np.float64)
    y = np.where(rng.random(n) < 0.5, rng.poisson(5, n) + 1, 0).astype(np.float64)
    y[n - HORIZON - 24 :] = 0  # obsolete: no demand for the last 24 periods and the horizon
    return y


def score(kind: str, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    ys = [make_series(kind, rng) for _ in range(n)]
    histories = [y[:-HORIZON] for y in ys]
    actual = np.stack([y[-HORIZON:] for y in ys])
    seconds, preds = {}, {}
    for name in NAMES:
        started = time.perf_counter()
        preds[name] = forecast_all([name], histories, HORIZON, SEASON)[name]
        if name in STATISTICAL:
            seconds[name] = round(time.perf_counter() - started, 2)
    err = {name: preds[name] - actual for name in NAMES}
    return {
        "rmse": {
            k: round(float(np.mean(np.sqrt(np.mean(e**2, axis=1)))), 3) for k, e in err.items()
        },
        "mae": {k: round(float(np.mean(np.abs(e))), 3) for k, e in err.items()},
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="series per kind (default 60)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    forecast_all(list(STATISTICAL), [make_series("lumpy", np.random.default_rng(0))], 2, SEASON)
    kinds = {}
    for i, kind in enumerate(("intermittent", "lumpy", "obsolete")):
        kinds[kind] = score(kind, args.n, args.seed + i)
        print(kind, "RMSE", kinds[kind]["rmse"])
    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "data": f"synthetic, {args.n} series per kind, {LENGTH} periods, last {HORIZON} forecast",
        "kinds": kinds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

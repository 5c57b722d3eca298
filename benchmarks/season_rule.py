"""When may a short series' AutoETS be seasonal? Two full seasons of history, or more than one?

The statistical candidates (tasks/evaluation/statistical.py) give a model the season length
only when the history is long enough; below, the non-seasonal model. statsforecast's AutoETS
itself considers seasonal forms from more than one season of history (and picks one only where
its AICc says so); AutoTheta and AutoCES look for a season from two seasons on whatever they are
given. So the rule matters for ETS on series with between one and two seasons of history: new
products, a team's short series, the backtest folds of M3's shortest.

Measured on M3's tuning split (the training part's last horizon scored; M3's test period unread):
each series' history cut to its last `n` steps, for n between one and two seasons, forecast by
AutoETS with the season and without; mean MASE (scale: the cut history's seasonal naive), and
the share of series where the seasonal-allowed fit is better.

    uv run --extra bench python -m benchmarks.season_rule

Writes benchmarks/results/season_rule.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import warnings
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.datasets import FREQUENCIES
from tasks.evaluation.metrics import seasonal_naive_scale
from tasks.evaluation.statistical import _model
from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "season_rule.json"
CUTS = {"monthly": (13, 14, 18, 23), "quarterly": (5, 6, 7)}


def autoets(y: np.ndarray, h: int, season: int) -> np.ndarray:
    """statsforecast's AutoETS with `season` as given (no rule of ours), the last value if it
    cannot fit."""
    try:
        return np.asarray(_model("ets", season).forecast(y=y, h=h)["mean"])
    except Exception:  # noqa: BLE001 - what the pipeline does with a failed fit
        return np.full(h, y[-1])


def mase(pred: np.ndarray, actual: np.ndarray, history: np.ndarray, m: int) -> float | None:
    scale = seasonal_naive_scale(history, m)
    return float(np.abs(pred - actual).mean() / scale) if scale > 0 else None


def cut(name: str, n: int, parts: list) -> dict:
    """Both fits on every series' last `n` history steps."""
    m, h = FREQUENCIES[name]["season"], FREQUENCIES[name]["horizon"]
    scores: dict[int, list[float]] = {m: [], 1: []}
    for _sid, history, actual in parts:
        y = history[-n:]
        row = {s: mase(autoets(y, h, s), actual, y, m) for s in (m, 1)}
        if None not in row.values():
            for s, v in row.items():
                scores[s].append(v)
    seasonal, flat = np.array(scores[m]), np.array(scores[1])
    return {
        "series": int(seasonal.size),
        "mase_season_allowed": round(float(seasonal.mean()), 4),
        "mase_non_seasonal": round(float(flat.mean()), 4),
        "season_allowed_better_share": round(float(np.mean(seasonal < flat)), 3),
        "season_allowed_worse_share": round(float(np.mean(seasonal > flat)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    from benchmarks.m3_test import m3_series

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    results = {}
    for name, cuts in CUTS.items():
        spec = FREQUENCIES[name]
        parts = m3_series(spec["subset"], split="tuning", horizon=spec["horizon"])
        results[name] = {str(n): cut(name, n, parts) for n in cuts}
        for n, r in results[name].items():
            print(f"{name} last {n}: {r}", flush=True)
    write_json(
        args.out,
        {
            "benchmark": "season_rule",
            "date": date.today().isoformat(),
            "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
            "data": "M3 tuning split: each series' training part less its last horizon, cut to "
            "its last n steps; the held-out horizon scored",
            "results": results,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

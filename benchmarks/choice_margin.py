"""How to choose among the statistical candidates per series: the tuning run behind
`evaluate.candidates: auto` and `evaluate.choice_margin` (tasks/evaluation/shrinkage.py).

On M3's training parts (the tuning set, the test period withheld; every series of a frequency
long enough for three folds), statsforecast
`cross_validation` with the pipeline's fold geometry (3 folds, step = tasks/config/auto.py
`tail_steps`) scores Naive, RandomWalkWithDrift, SeasonalNaive, AutoTheta and AutoETS, and
three plain means of them. Per series MASE (scale: the seasonal naive's in-sample error before
each origin). Each strategy chooses on folds 1-2 and is scored on fold 0 (the training part's last
horizon), which it never sees:

- every single model, for reference;
- `per_series`: each series' own best on folds 1-2 (choice_margin 0);
- `global`: the model with the lowest mean over all series on folds 1-2;
- `shrinkN`: a series keeps its own best only where it beats the global one on its own folds
  1-2 by more than N (choice_margin N).

    uv run --extra bench python -m benchmarks.choice_margin [--freq yearly,quarterly,other]

Writes benchmarks/results/choice_margin.json. The LSTM is not in it (no network is trained
here); the pipeline applies the same rule with the LSTM among the models.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.datasets import FREQUENCIES
from benchmarks.m3_test import m3_series
from benchmarks.many_series import m3_frame
from tasks.config.auto import tail_steps
from tasks.evaluation.metrics import seasonal_naive_scale

RESULTS = Path(__file__).resolve().parent / "results" / "choice_margin.json"
CACHE = Path.home() / ".cache" / "forecast-benchmarks"  # fold scores, outside the repository
SINGLE = ("Naive", "RWD", "SeasonalNaive", "AutoTheta", "AutoETS")
COMBOS = {
    "mean_theta_ets": ("AutoTheta", "AutoETS"),
    "mean_theta_ets_drift": ("AutoTheta", "AutoETS", "RWD"),
    "mean_all": SINGLE,
}
SETS = {
    "baselines": ("Naive", "RWD", "SeasonalNaive"),
    "baselines_theta_ets": SINGLE,
    "with_means": SINGLE + tuple(COMBOS),
    "pipeline_auto": SINGLE + ("mean_theta_ets",),  # what evaluate.candidates auto gives (no LSTM)
}
MARGINS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)  # 1.0: never leave the anchor


def fold_scores(freq: str) -> tuple[pd.DataFrame, dict]:
    """Per (series, fold) the MASE of every model and mean; fold 0 = the latest origin."""
    from statsforecast import StatsForecast
    from statsforecast.models import (
        AutoETS,
        AutoTheta,
        Naive,
        RandomWalkWithDrift,
        SeasonalNaive,
    )

    spec = FREQUENCIES[freq]
    h, m = spec["horizon"], spec["season"]
    step = tail_steps(m, h)
    # M3's training parts only (m3_frame): the test period is never seen, so fold 0 here is the
    # training part's last horizon (issue 23.4: tune on training data).
    frame = m3_frame(m3_series(spec["subset"]), spec["every"]).to_pandas()
    frame = frame.rename(columns={"series_id": "unique_id", "timestamp": "ds", "value": "y"})
    frame["ds"] = frame.groupby("unique_id").cumcount()  # integer steps: any calendar
    lengths = frame.groupby("unique_id").size()
    need = h + 2 * step + max(2 * m, 8)  # two seasons (8 steps at least: AutoETS) before fold 2
    frame = frame[frame.unique_id.isin(lengths[lengths >= need].index)]
    models = [
        Naive(),
        RandomWalkWithDrift(),
        SeasonalNaive(season_length=m),
        AutoTheta(season_length=m),
        AutoETS(season_length=m),
    ]
    started = time.perf_counter()
    sf = StatsForecast(models=models, freq=1, n_jobs=os.cpu_count() or 1)
    cv = sf.cross_validation(df=frame, h=h, n_windows=3, step_size=step)
    seconds = time.perf_counter() - started
    cv = cv.reset_index() if "unique_id" not in cv.columns else cv
    cv = cv.rename(columns={"RandomWalkWithDrift": "RWD"})
    history = {u: g.y.to_numpy() for u, g in frame.groupby("unique_id")}
    rows = []
    for (uid, cutoff), g in cv.groupby(["unique_id", "cutoff"]):
        insample = history[uid][: int(cutoff) + 1]
        scale = seasonal_naive_scale(insample, m if insample.size > m else 1)
        if not scale > 0:
            continue  # a constant history: MASE undefined
        actual = g.y.to_numpy()
        preds = {name: g[name].to_numpy() for name in SINGLE}
        preds |= {c: np.mean([preds[p] for p in parts], axis=0) for c, parts in COMBOS.items()}
        row = {"series": uid, "cutoff": int(cutoff)}
        row |= {k: float(np.mean(np.abs(actual - v)) / scale) for k, v in preds.items()}
        rows.append(row)
    scores = pd.DataFrame(rows)
    scores["fold"] = scores.groupby("series").cutoff.rank(ascending=False).astype(int) - 1
    scores = scores[scores.groupby("series").fold.transform("count") == 3]
    info = {"horizon": h, "season_length": m, "step": step, "cv_seconds": round(seconds, 1)}
    return scores, info | {"series": int(scores.series.nunique())}


def strategies(scores: pd.DataFrame, names: tuple[str, ...]) -> dict:
    """Mean fold-0 MASE of each model and each way of choosing among `names`."""
    wide = scores.pivot(index="series", columns="fold", values=list(names))
    fold0 = pd.DataFrame({n: wide[n][0] for n in names})
    older = pd.DataFrame({n: (wide[n][1] + wide[n][2]) / 2 for n in names})
    out = {n: float(fold0[n].mean()) for n in names}
    own = older.idxmin(axis=1)
    out["per_series"] = float(np.mean([fold0.at[s, own[s]] for s in fold0.index]))
    best = older.mean().idxmin()
    out["global"] = float(fold0[best].mean())
    out["global_model"] = best
    combos = [n for n in names if n in COMBOS]
    anchors = {"": best}
    if combos:
        # toward the combination: the anchor is the best combination on folds 1-2, not the
        # best model (a combination's mean over two folds is a steadier pick than a single's)
        anchors["_combo"] = older[combos].mean().idxmin()
        out["global_combo"] = float(fold0[anchors["_combo"]].mean())
        out["global_combo_model"] = anchors["_combo"]
    for suffix, anchor in anchors.items():
        for margin in MARGINS:
            keep = [own[s] if older.at[s, own[s]] < (1 - margin) * older.at[s, anchor] else anchor
                    for s in fold0.index]  # fmt: skip
            out[f"shrink{suffix}{margin:g}"] = float(
                np.mean([fold0.at[s, k] for s, k in zip(fold0.index, keep, strict=True)])
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--freq", default="yearly,quarterly,other,monthly")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--cache", action="store_true", help=f"reuse the fold scores kept under {CACHE}"
    )
    args = parser.parse_args()
    results = {}
    for freq in args.freq.split(","):
        cached = CACHE / f"choice_margin_{freq}.parquet"
        if args.cache and cached.exists():
            scores = pd.read_parquet(cached)
            info = json.loads(cached.with_suffix(".json").read_text())
        else:
            scores, info = fold_scores(freq)
            CACHE.mkdir(parents=True, exist_ok=True)
            scores.to_parquet(cached)
            cached.with_suffix(".json").write_text(json.dumps(info))
        results[freq] = info | {k: strategies(scores, v) for k, v in SETS.items()}
        for name, row in results[freq].items():
            if isinstance(row, dict):
                figures = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float))
                print(f"[{freq}] {name}: {figures} (global: {row['global_model']}, "
                      f"combination: {row.get('global_combo_model')})")  # fmt: skip
    write_result(
        args.out,
        "choice_margin",
        "mean MASE on fold 0 (the last horizon of M3's training part; the test period withheld), "
        "chosen on folds 1-2",
        results,
    )


def write_result(out: Path, benchmark: str, metric: str, results: dict) -> None:
    """benchmarks/results/NAME.json of a tuning-split benchmark (this one, choice_ablation,
    refit_value): the figures with the date, the machine and what the metric is."""
    doc = {
        "benchmark": benchmark,
        "date": date.today().isoformat(),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "metric": metric,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

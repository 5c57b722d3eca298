"""The per-series choice with the LSTM among the models, on a finished pipeline run's backtest.

A run of benchmarks/many_series.py (kept with --keep) was fed M3's training parts only, so its
backtest folds lie inside them: fold 0 is the training part's last horizon, folds 1-2 the older
ones. This reads that run's plots/backtest_forecast.csv (every LSTM series, every fold, every
candidate's forecast, the LSTM and its combination included) and the data it was given, and
replays the pipeline's own choice (tasks.evaluation.selection.choose: chosen on folds 1-2, never
fold 0) under other settings, each scored on fold 0:

- every model alone;
- `choice_margin` 0 (each series' own best) to 0.5, shrunk toward the best model
  (`shrink_toward: best`) or the best combination (`combination`), and the anchor alone;
- how often a series' own best on folds 1-2 is its best on fold 0 (issue 23.3), and the oracle
  (each series' best on fold 0: a bound no choice reaches).

MASE as the pipeline's: MAE over the fold's horizon / the seasonal naive's in-sample MAE of the
history before the fold's origin (tasks.evaluation.metrics). The figure the run itself reported
(metrics/evaluate.json `published`) is recomputed as a check.

    uv run --extra bench python -m benchmarks.choice_ablation PROJECT [PROJECT ...]

Writes benchmarks/results/choice_ablation.json. M3's test period is never read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import yaml

from benchmarks.choice_margin import write_result
from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.evaluation import metrics, selection, shrinkage
from tasks.evaluation.combinations import is_combination

RESULTS = Path(__file__).resolve().parent / "results" / "choice_ablation.json"
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
NOT_MODELS = {"fold", SERIES_ID, TIMESTAMP, "horizon_step", "actual"}


def fold_mase(project: Path) -> tuple[list[str], list[str], np.ndarray, dict]:
    """(series, models, MASE[fold, series, model], run facts) of the run in `project`."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    m = int(params["data"]["season_length"])
    data = pl.read_csv(project / params["data"]["path"], try_parse_dates=True)
    history = {
        str(sid): part.sort(TIMESTAMP)
        for (sid,), part in data.group_by(SERIES_ID, maintain_order=True)
    }
    bf = pl.read_csv(project / "plots" / "backtest_forecast.csv", try_parse_dates=True)
    bf = bf.with_columns(pl.col(SERIES_ID).cast(pl.String))
    models = [c for c in bf.columns if c not in NOT_MODELS and not c.startswith(("lo_", "hi_"))]
    series = sorted(bf[SERIES_ID].unique().to_list())
    folds = sorted(bf["fold"].unique().to_list())
    index = {sid: i for i, sid in enumerate(series)}
    out = np.full((len(folds), len(series), len(models)), np.nan)
    for (fold, sid), g in bf.group_by("fold", SERIES_ID):
        g = g.sort("horizon_step")
        h = history[sid]
        before = h.filter(pl.col(TIMESTAMP) < g[TIMESTAMP].min())[VALUE].to_numpy()
        scale = metrics.seasonal_naive_scale(before, m if before.size > m else 1)
        if not scale > 0:
            continue  # MASE undefined: the pipeline ranks such a series by MAE; left out here
        actual = g["actual"].to_numpy()
        for j, name in enumerate(models):
            out[fold, index[sid], j] = np.mean(np.abs(actual - g[name].to_numpy())) / scale
    keep = ~np.isnan(out).any(axis=(0, 2))
    evaluate = json.loads((project / "metrics" / "evaluate.json").read_text())
    facts = {
        "season_length": m,
        "horizon": int(params["forecast"]["horizon"]),
        "choice_margin": params["evaluate"]["choice_margin"],
        "shrink_toward": params["evaluate"].get("shrink_toward", "best"),
        "reported_published_fold0": (evaluate.get("published") or {}).get("mase"),
        "series_dropped_mase_undefined": int((~keep).sum()),
    }
    return [s for s, k in zip(series, keep, strict=True) if k], models, out[:, keep], facts


def stand_ins(mase: np.ndarray, models: list[str]) -> list[SimpleNamespace]:
    """FoldResult stand-ins carrying what `selection.choose` reads (fold, scales, scores)."""
    return [
        SimpleNamespace(
            fold=k,
            scales=np.ones(mase.shape[1]),
            scores={name: [{"mase": v} for v in mase[k, :, j]] for j, name in enumerate(models)},
        )
        for k in range(mase.shape[0])
    ]


def ablation(mase: np.ndarray, models: list[str]) -> dict:
    """Mean fold-0 MASE of each model and each way of choosing (module docstring)."""
    col = {name: j for j, name in enumerate(models)}
    candidates = tuple(n for n in models if n != selection.LSTM)
    results = stand_ins(mase, models)
    fold0 = mase[0]
    out: dict = {"models": {n: float(fold0[:, col[n]].mean()) for n in models}}

    def score(choices: list[str]) -> float:
        return float(np.mean([fold0[s, col[c]] for s, c in enumerate(choices)]))

    for toward in ("best", "combination"):
        rows = {}
        for margin in MARGINS:
            choices, evidence = selection.choose(results, "mase", candidates, margin, toward)
            rows[f"{margin:g}"] = round(score(choices), 4)
        anchor = shrinkage.anchor(evidence, (selection.LSTM, *candidates), toward)
        rows["anchor"] = anchor
        rows["anchor_alone"] = round(float(fold0[:, col[anchor]].mean()), 4)
        out[f"toward_{toward}"] = rows
    own = selection.choose(results, "mase", candidates, 0.0)[0]
    best0 = [models[j] for j in np.argmin(fold0, axis=1)]
    out["own_best_is_fold0_best"] = round(float(np.mean(np.array(own) == np.array(best0))), 4)
    out["oracle_fold0"] = round(float(fold0.min(axis=1).mean()), 4)
    combos = [n for n in models if is_combination(n)]
    out["own_best_is_a_combination"] = round(float(np.mean([c in combos for c in own])), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("projects", nargs="+", type=Path, help="kept many_series project copies")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = {}
    for project in args.projects:
        series, models, mase, facts = fold_mase(project)
        row = facts | {"series": len(series)} | ablation(mase, models)
        results[project.name] = row
        print(f"[{project.name}] {len(series)} LSTM series, fold 0 mean MASE:")
        print("  models: " + ", ".join(f"{k} {v:.4f}" for k, v in row["models"].items()))
        for toward in ("best", "combination"):
            print(f"  toward {toward}: {row[f'toward_{toward}']}")
        print(
            f"  own best = fold-0 best on {row['own_best_is_fold0_best']:.1%} of series; "
            f"oracle {row['oracle_fold0']}; run reported {facts['reported_published_fold0']}"
        )
    write_result(
        args.out,
        "choice_ablation",
        "mean MASE on fold 0 (the last horizon of M3's training part; the test period withheld) "
        "of the LSTM series, chosen on folds 1-2",
        results,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Would selecting each statistical model's form once, at an older origin, and refitting only its
parameters after, be a free speed-up? Measured on M3's tuning split, not kept (docs/decisions.md
"The statistical backtest refits every fold").

AutoETS picks one of up to 30 forms (error, trend, season; damped or not) by AICc, AutoTheta one
of four Theta models, AutoCES one of four seasonal kinds; the search is most of a fit's cost. The
backtest and publish search again at every origin. Reusing the form found at an older origin
would make every later fit one fixed-form fit. This benchmark fits, per series of a frequency:

- `full`: the three Auto models searched on the whole history (what publish does today);
- `search at the old origin`: the same searched on the history cut `--folds-back` backtest steps
  plus one horizon earlier (2: fold 2's origin, the earliest; 0: fold 0's, the latest);
- `fixed forms`: each model with the form the old origin chose, fitted on the whole history.

and scores both forecasts of the held-out horizon (the training part's last horizon, the tuning
split: M3's test period unread), with the seconds of each pass (`--jobs` processes, per-series
fits in a process pool; the same pool for every pass).

    uv run --extra bench python -m benchmarks.form_reuse --freq monthly,quarterly,yearly,other

Writes benchmarks/results/form_reuse.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from benchmarks.m3_test import m3_series, scales, score
from tasks.evaluation.statistical import default_jobs, season_for

RESULTS = Path("benchmarks/results/form_reuse.json")
# M3's horizons and seasons, and the backtest's fold step (tasks/config/auto.py tail_steps).
FREQ = {
    "monthly": (18, 12, 12),
    "quarterly": (8, 4, 4),
    "yearly": (6, 1, 3),
    "other": (8, 1, 4),
}
MODELS = ("ets", "theta", "ces")
# Where each fitted model (statsforecast's `model_`) says which form its search chose.
FORM_KEY = {"ets": "components", "theta": "modeltype", "ces": "seasontype"}


def _searched(args: tuple[np.ndarray, int, int]) -> tuple[dict, dict]:
    """Each Auto model searched on `y`: (name -> forecast, name -> the form it chose)."""
    from statsforecast.models import AutoCES, AutoETS, AutoTheta

    y, h, m = args
    warnings.simplefilter("ignore")
    preds, forms = {}, {}
    for name, cls in zip(MODELS, (AutoETS, AutoTheta, AutoCES), strict=True):
        model = cls(season_length=season_for(y.size, m))
        try:
            model.fit(y)
            preds[name] = np.asarray(model.predict(h)["mean"], dtype=np.float64)
            forms[name] = model.model_[FORM_KEY[name]]
        except Exception:  # noqa: BLE001 - a failed fit: the last value, as the pipeline does
            preds[name], forms[name] = np.full(h, y[-1]), None
    return preds, forms


def _fixed(args: tuple[np.ndarray, int, int, dict]) -> dict:
    """Each model with the given form, fitted on `y` (no form: searched, as a failed reuse)."""
    from statsforecast.models import AutoCES, AutoETS, AutoTheta

    y, h, m, forms = args
    warnings.simplefilter("ignore")
    out = {}
    season = season_for(y.size, m)
    for name in MODELS:
        form = forms.get(name)
        try:
            if form is None:
                raise ValueError("no form to reuse")
            if name == "ets":
                model = AutoETS(season_length=season, model=form[:3], damped=form[3] == "D")
            elif name == "theta":
                model = AutoTheta(season_length=season, model=form)
            else:
                model = AutoCES(season_length=season, model=form)
            out[name] = np.asarray(model.forecast(y=y, h=h)["mean"], dtype=np.float64)
        except Exception:  # noqa: BLE001
            out[name] = _searched((y, h, m))[0][name]
    return out


def run(freq: str, folds_back: int, jobs: int) -> dict:
    h, m, step = FREQ[freq]
    series = m3_series(freq, split="tuning", horizon=h)
    ids = [sid for sid, _, _ in series]
    ys = [x for _, x, _ in series]
    tests = dict(zip(ids, (t for _, _, t in series), strict=True))
    scale = scales(dict(zip(ids, ys, strict=True)), m)
    cut = h + folds_back * step
    olds = [y[:-cut] if y.size - cut >= 3 else y for y in ys]
    with Pool(jobs) as pool:
        t0 = time.perf_counter()
        full = pool.map(_searched, [(y, h, m) for y in ys], chunksize=8)
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        old = pool.map(_searched, [(y, h, m) for y in olds], chunksize=8)
        t_old = time.perf_counter() - t0
        # A form is reusable only where the old origin fitted the same season as the full history.
        args = [
            (y, h, m, o[1] if season_for(y.size, m) == season_for(yo.size, m) else {})
            for y, yo, o in zip(ys, olds, old, strict=True)
        ]
        t0 = time.perf_counter()
        reused = pool.map(_fixed, args, chunksize=8)
        t_fixed = time.perf_counter() - t0

    def mase(preds: list[dict], name: str) -> float:  # the other M3 benchmarks' MASE
        by_id = {sid: p[name] for sid, p in zip(ids, preds, strict=True)}
        return score(by_id, tests, scale)["mase"]

    full_preds = [f[0] for f in full]
    for preds in (full_preds, reused):
        for p in preds:
            p["mean_ets_theta_ces"] = (p["ets"] + p["theta"] + p["ces"]) / 3
    names = (*MODELS, "mean_ets_theta_ces")
    same = np.mean([f[1]["ets"] == o[1]["ets"] for f, o in zip(full, old, strict=True)])
    return {
        "series": len(ys),
        "horizon": h,
        "cut_steps": cut,
        "seconds": {
            "full_search": round(t_full, 2),
            "search_at_old_origin": round(t_old, 2),
            "fixed_forms": round(t_fixed, 2),
        },
        "mase_full": {n: mase(full_preds, n) for n in names},
        "mase_reused": {n: mase(reused, n) for n in names},
        "ets_form_unchanged_share": round(float(same), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freq", default="monthly,quarterly,yearly,other")
    parser.add_argument("--folds-back", type=int, default=0, help="0: fold 0's origin")
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args()
    results = {}
    for freq in args.freq.split(","):
        results[freq] = r = run(freq, args.folds_back, args.jobs)
        s, full, re = r["seconds"], r["mase_full"], r["mase_reused"]
        print(
            f"{freq:10s} {r['series']:5d} series  search {s['full_search']:6.1f} s  "
            f"fixed forms {s['fixed_forms']:5.1f} s ({s['full_search'] / s['fixed_forms']:.1f}x)"
            f"  ETS form unchanged {r['ets_form_unchanged_share']:.0%}"
        )
        for name in full:
            print(f"  {name:20s} searched {full[name]:.4f}  reused {re[name]:.4f}")
    payload = {
        "benchmark": "form_reuse",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "protocol": "M3 tuning split (training part less its last horizon; that horizon "
        "scored); forms chosen on the history cut `cut_steps` earlier, parameters refitted",
        "folds_back": args.folds_back,
        "jobs": args.jobs,
        "note": args.note,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

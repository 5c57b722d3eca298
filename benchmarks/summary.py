"""A short markdown table of the benchmark results: one row per benchmarks/results/*.json.

    python -m benchmarks.summary                  # print the table
    python -m benchmarks.summary --write-readme   # also put it in benchmarks/README.md

Each known result file gets its 2-4 headline figures; any other file gets its first top-level
numbers. The date is the one the file records, else that of the commit that last changed it.
The figures themselves stay in the JSON files: benchmarks/README.md carries only this table,
between `<!-- benchmarks:start -->` and `<!-- benchmarks:end -->`, beside the benchmarks' prose
(the project's README links to it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import mean

from benchmarks.summary_figures import num, rate
from benchmarks.summary_studies import (
    combination_weights,
    form_reuse,
    forward_folds,
    ratio_by_series,
    season_rule,
    statistical_batch,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
DATE_KEYS = ("date", "run_date", "generated_at", "finished_at", "started_at", "timestamp")


def accuracy(d: dict) -> str:
    every = d["summary"]["all"]
    lstm = every["lstm"]
    others = sorted((v["mean_mase"], k) for k, v in every.items() if k not in ("lstm", "naive"))
    best = ", ".join(f"{k} {num(m)}" for m, k in others[:3])
    return (
        f"mean MASE, {lstm['series']} series: LSTM {num(lstm['mean_mase'])}, {best}; "
        f"LSTM beats seasonal naive on {lstm['beats_seasonal_naive']}/{lstm['series']}"
    )


def final_test(d: dict) -> str:
    start, end = d["test_period"]
    return (
        f"AirPassengers {start} to {end}: RMSE {num(d['rmse'])}, MASE {num(d['mase'])} "
        f"(seasonal naive RMSE {num(d['seasonal_naive_rmse'])})"
    )


def ingest(d: dict) -> str:
    parts = [
        f"{fmt} {rate(f['project']['rows_per_s'])} vs anchor {rate(f['anchor']['rows_per_s'])} "
        f"({num(f['ratio'])}x)"
        for fmt, f in d["formats"].items()
    ]
    peak = max(f["project"]["rss_rise_mib"] for f in d["formats"].values())
    return f"{num(d['rows'])} rows, rows/s: {'; '.join(parts)}; peak RSS rise {num(peak)} MiB"


def model_family(d: dict) -> str:
    rmse = [(r["scores"]["model"]["rmse"], r["variant"]) for r in d["results"]]
    (best, best_name), (worst, worst_name) = min(rmse), max(rmse)
    naive = d["results"][0]["scores"]["seasonal_naive"]["rmse"]
    return (
        f"test RMSE: params.yaml {num(rmse[0][0])}, best {best_name} {num(best)}, "
        f"worst {worst_name} {num(worst)}; seasonal naive {num(naive)}"
    )


def scale(d: dict) -> str:
    s = d["stages"]
    return (
        f"{d['series']:,} series x {d['steps']:,} steps: ingest {rate(s['ingest']['rows_per_s'])} "
        f"rows/s, train {rate(s['train']['windows_per_s'])} windows/s, evaluate "
        f"{rate(s['evaluate']['series_per_s'])} series/s; peak RSS {num(d['rss_peak_mib'])} MiB"
    )


def scale_training(d: dict) -> str:
    parts = []
    for series, c in d["cases"].items():
        f, s = c["runs"]["full"], c["runs"]["sampled"]
        parts.append(
            f"{int(series):,} series: val_loss full {num(f['best_val_loss'])} in "
            f"{num(f['fit_s'])} s vs {num(s['windows_per_epoch'])}/epoch "
            f"{num(s['best_val_loss'])} in {num(s['fit_s'])} s; MASE "
            f"{num(f['backtest_mase']['lstm'])} vs {num(s['backtest_mase']['lstm'])}"
        )
    return "; ".join(parts)


def training(d: dict) -> str:
    short = {
        "default strategy, 1 replica": "default",
        "MirroredStrategy, 1 CPU replica": "mirrored x1",
        "MirroredStrategy, 2 CPU replicas": "mirrored x2",
        "default strategy, mixed_bfloat16": "bf16",
    }
    rates = ", ".join(
        f"{short.get(r['name'], r['name'])} {rate(r['windows_per_s'])}" for r in d["results"][:4]
    )
    return f"windows/s ({d['series']} series, batch {d['batch_size']}): {rates}"


def tune_defaults(d: dict) -> str:
    ratios = sorted((mean(r["ratio"] for r in c["runs"].values()), k) for k, c in d.items())
    ranked = ", ".join(f"{k} {num(m)}" for m, k in ratios[:3])
    return f"mean RMSE ratio to seasonal naive on the training years: {ranked}"


def windowing(d: dict) -> str:
    loop = next(r for r in d["results"] if r["method"] == "loop")
    c = d["comparison"]["loop_vs_numpy_h1"]
    return (
        f"{num(d['n_points'])} points: strided windows {num(c['speedup_ready'])}x faster to build "
        f"and {num(c['memory_ratio_rss_rise'])}x less memory than the loop "
        f"({num(loop['rss_delta_mib'])} MiB)"
    )


def accuracy_m3(d: dict) -> str:
    m = d["mase"]
    counts = d["selection"]["counts"]
    names = ("published", "lstm", "seasonal_naive", "AutoETS", "AutoARIMA")
    shown = ", ".join(f"{k} {num(m[k])}" for k in names if k in m)
    n = d["series"]
    head = f"M3 monthly, {n} series, mean MASE on M3's test period"
    return f"{head}: {shown}; LSTM published on {counts['lstm']}/{n}"


def accuracy_mixture(d: dict) -> str:
    m = d["summary"]["mean_mase"]
    names = ("published", "lstm", "seasonal_naive", "AutoETS", "AutoARIMA")
    shown = ", ".join(f"{k} {num(m[k])}" for k in names if k in m)
    n = len(d["datasets"])
    met = d["summary"]["targets_met"]
    return f"{n} series, fold 0, mean MASE: {shown}; targets met on {met}"


def tune_candidates(d: dict) -> str:
    lists = d["lists"]
    best = d["best"]
    return (
        f"{d['data']}: mixture MASE with {best} {num(lists[best]['mase'])}, baselines only "
        f"{num(lists['baselines']['mase'])}; ets alone {num(d['single_models_fold0_mase']['ets'])}"
    )


def publish_store(d: dict) -> str:
    parts = []
    for name, b in d["backends"].items():
        if "skipped" in b:
            parts.append(f"{name} skipped")
            continue
        parts.append(
            f"{name} first {num(b['first_s'])} s, last {num(b['last_s'])} s, median "
            f"{num(b['median_s'])} s (last/first {num(b['last_over_first'])})"
        )
    head = f"{d['publishes']} publishes of {num(d['series'])} series x {d['horizon']}"
    return f"{head}: {'; '.join(parts)}"


def covariates(d: dict) -> str:
    parts = []
    syn = d["sets"].get("synthetic")
    if syn:
        r = syn["runs"]
        parts.append(
            f"synthetic promotions, MASE with {num(r['with_covariates']['lstm_mase'])} vs "
            f"without {num(r['without_covariates']['lstm_mase'])} (ratio "
            f"{num(syn['mase_ratio_with_to_without'])}), seasonal naive "
            f"{num(r['without_covariates']['seasonal_naive_mase'])}"
        )
    macro = d["sets"].get("macrodata")
    if macro:
        r = macro["runs"]
        parts.append(
            f"US consumption with income growth: future-known "
            f"{num(r['growth_future_known']['lstm_mase'])}, past-only "
            f"{num(r['growth_past_only']['lstm_mase'])}, without "
            f"{num(r['without_covariates']['lstm_mase'])}, seasonal naive "
            f"{num(r['without_covariates']['seasonal_naive_mase'])}"
        )
    return "; ".join(parts)


def distributed(d: dict) -> str:
    sec = d["seconds"]
    parts = [f"{name.replace('_', ' ')} {num(v)} s" for name, v in sec.items()]
    same = all(c["choices_differing"] == 0 for c in d["same_as_local_1_core"].values())
    return (
        f"{d['series']} series, statistical part of evaluate: {', '.join(parts)}; overhead "
        f"{num(d['scheduling_overhead_per_series_s'] * 1e3)} ms/series; "
        f"{'same choices and forecasts' if same else 'choices DIFFER'} on every engine"
    )


def intermittent(d: dict) -> str:
    parts = []
    for kind, k in d["kinds"].items():
        rmse = k["rmse"]
        parts.append(
            f"{kind} ets {num(rmse['ets'])}, croston {num(rmse['croston'])}, adida "
            f"{num(rmse['adida'])}, tsb {num(rmse['tsb'])}, naive {num(rmse['naive'])}"
        )
    return f"synthetic zeros, mean RMSE: {'; '.join(parts)}"


def many_series(d: dict) -> str:
    parts = []
    for name, r in d["results"].items():
        stopped = next((s for s, v in r["stages"].items() if v["exit_code"]), None)
        if stopped:
            parts.append(f"{name} stopped at {stopped}")
            continue
        versus = (
            f" vs anchor {num(r['anchor']['seconds'])} s ({num(r['ratio_pipeline_to_anchor'])}x)"
            if r.get("anchor")
            else ""
        )
        parts.append(
            f"{name} {num(r['pipeline_s'])} s{versus}, peak {num(r['peak_rss_mib'])} MiB, "
            f"LSTM series' published MASE {num(r['published_mase_latest_fold'])} vs seasonal "
            f"naive {num(r['seasonal_naive_mase_latest_fold'])}, gate "
            f"{'passed' if r.get('gate_passed') else 'refused'}"
        )
    limit, stride = d.get("series_limit"), d.get("series_stride") or 1
    which = "every series" if stride == 1 and not limit else "a slice"
    return f"{_variant(d)}{_dataset(d)}, {which} per subset: " + "; ".join(parts)


def _dataset(d: dict) -> str:
    """The competition's name: M3 unless the file says otherwise (many_series --dataset)."""
    name = d.get("dataset", "m3")
    return "M3" if name == "m3" else name.capitalize()


def _variant(d: dict) -> str:
    """What sets a variant's file apart (the tuning split, an ablation), as a prefix."""
    first = next(iter(d.get("results", {}).values()), {})
    tuning = first.get("split") == "tuning" or "less their last horizon" in first.get("data", "")
    text = "tuning split (training part's last horizon scored), " if tuning else ""
    if d.get("ablation"):
        text += d["ablation"].split(" (")[0] + ": "
    return text


def choice_ablation(d: dict) -> str:
    """Per frequency: the run's own setting and the old default, replayed on its fold 0."""
    parts = []
    for name, r in d["results"].items():
        best, combo = r["toward_best"], r["toward_combination"]
        parts.append(
            f"{name} ({r['series']} LSTM series) best/0.3 {num(best['0.3'])}, "
            f"combination/0.5 {num(combo['0.5'])}, own best = fold-0 best "
            f"{num(100 * r['own_best_is_fold0_best'])} %"
        )
    return "M3 training parts, fold 0 MASE of the replayed choice: " + "; ".join(parts)


def refit_value(d: dict) -> str:
    """Per frequency: the LSTM from the refit vs from the train stage's model."""
    parts = [
        f"{name} ({r['series']} LSTM series) refit {num(r['refit'])} vs train stage's model "
        f"{num(r['train_stage'])}"
        for name, r in d["results"].items()
    ]
    return "M3 tuning split, LSTM mean MASE on the held-out horizon: " + "; ".join(parts)


def accuracy_m3_all(d: dict) -> str:
    """Per M3 frequency, on its test period: the published mixture against AutoETS, the LSTM, the
    best peer, NHITS, and the intervals' coverage."""
    parts = []
    for name, r in d["results"].items():
        m = {k: v["mase"] for k, v in r["methods"].items() if v.get("mase") is not None}
        if "published" not in m:
            parts.append(f"{name} nothing published")
            continue
        pub, ets = m["published"], m.get("AutoETS")
        text = f"{name} ({r['series']}) published {num(pub)}"
        if ets:
            text += f" ({num(pub / ets)}x AutoETS {num(ets)})"
        if "lstm" in m:
            text += f", LSTM {num(m['lstm'])} on {r['lstm_series']}"
        for peer in ("mean_ets_theta", "AutoARIMA", "NHITS"):
            if peer in m:
                text += f", {peer} {num(m[peer])}"
        cov = r.get("coverage") or {}
        if "80" in cov and "95" in cov:
            text += f", coverage 80/95 % {num(100 * cov['80'])}/{num(100 * cov['95'])}"
        parts.append(text)
    stride, limit = d.get("series_stride") or 1, d.get("series_limit")
    which = "every series" if stride == 1 and not limit else "a slice"
    scored = f"{_dataset(d)} test period" if "tuning split" not in _variant(d) else "scored horizon"
    return f"{_variant(d)}{scored}, mean MASE, {which}: " + "; ".join(parts)


def choice_margin(d: dict) -> str:
    parts = []
    for name, r in d["results"].items():
        row = r["with_means"]
        parts.append(
            f"{name} per series {num(row['per_series'])}, margin 0.3 {num(row['shrink0.3'])}, "
            f"global {num(row['global'])}"
        )
    return (
        "M3 training parts (test withheld), fold 0 MASE chosen on folds 1-2 (baselines, theta, "
        "ets, means): " + "; ".join(parts)
    )


HEADLINES: dict[str, Callable[[dict], str]] = {
    "accuracy": accuracy,
    "covariates": covariates,
    "distributed": distributed,
    "accuracy_m3": accuracy_m3,
    "accuracy_m3_all": accuracy_m3_all,
    "accuracy_mixture": accuracy_mixture,
    "tune_candidates": tune_candidates,
    "final_test": final_test,
    "ingest": ingest,
    "intermittent": intermittent,
    "many_series": many_series,
    "many_series_combination": many_series,
    "many_series_tuning": many_series,
    "many_series_tourism": many_series,
    "many_series_synthetic": many_series,
    "accuracy_tourism": accuracy_m3_all,
    "accuracy_synthetic": accuracy_m3_all,
    "accuracy_m3_all_combination": accuracy_m3_all,
    "accuracy_m3_tuning": accuracy_m3_all,
    "choice_ablation": choice_ablation,
    "many_series_tuning_ensemble3": many_series,
    "many_series_tuning_mae": many_series,
    "many_series_monthly_timing": many_series,
    "accuracy_m3_tuning_mae": accuracy_m3_all,
    "accuracy_m3_tuning_ensemble3": accuracy_m3_all,
    "choice_margin": choice_margin,
    "refit_value": refit_value,
    "model_family": model_family,
    "publish_store": publish_store,
    "scale": scale,
    "scale_training": scale_training,
    "ratio_by_series": ratio_by_series,
    "combination_weights": combination_weights,
    "statistical_batch": statistical_batch,
    "form_reuse": form_reuse,
    "forward_folds": forward_folds,
    "season_rule": season_rule,
    "training": training,
    "tune_defaults": tune_defaults,
    "windowing": windowing,
}


def generic(d: object) -> str:
    """First four top-level numbers of an unknown result file."""
    if not isinstance(d, dict):
        return f"{type(d).__name__} of {len(d) if hasattr(d, '__len__') else 1}"
    figures = [
        f"{k} {num(v)}"
        for k, v in d.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return ", ".join(figures[:4]) or f"no top-level figures ({', '.join(list(d)[:4])})"


def date_of(d: object, path: Path) -> str:
    """The run date the file records, else the date of the commit that last changed it."""
    if isinstance(d, dict):
        for key in DATE_KEYS:
            if isinstance(d.get(key), str):
                return d[key][:10]
    try:
        done = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "-"
    return done.stdout.strip() or "-"


def row(path: Path, base: Path = README.parent) -> str:
    """One table row; the link relative to `base`, the folder of the file the table goes in."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return f"| {path.stem} | - | unreadable: {err} |"
    try:
        text = HEADLINES[path.stem](d) if path.stem in HEADLINES else generic(d)
    except (KeyError, IndexError, TypeError, ValueError, StopIteration):
        text = generic(d)  # a known file whose layout changed
    link = Path(os.path.relpath(path, base)).as_posix() if path.is_relative_to(ROOT) else path.name
    return f"| [{path.stem}]({link}) | {date_of(d, path)} | {text} |"


def table(results: Path = RESULTS, base: Path = README.parent) -> str:
    rows = [row(p, base) for p in sorted(results.glob("*.json"))]
    return "\n".join(["| benchmark | date | headline figures |", "|---|---|---|", *rows])


def write_readme(text: str, readme: Path = README) -> None:
    doc = readme.read_text()
    start, end = doc.find(START), doc.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: no {START} ... {END} block to replace")
    readme.write_text(f"{doc[: start + len(START)]}\n{text}\n{doc[end:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of *.json")
    parser.add_argument("--write-readme", action="store_true", help="update the block in --readme")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = table(args.results.resolve(), args.readme.resolve().parent)
    print(text)
    if args.write_readme:
        write_readme(text, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rows of the benchmark table (benchmarks/summary.py) for the speed and accuracy studies of
issues 22 and 23: each measured against the defaults, most not kept (docs/decisions.md)."""

from __future__ import annotations

from benchmarks.summary_figures import num


def form_reuse(d: dict) -> str:
    parts = []
    for freq, r in d["results"].items():
        sec, full, re = r["seconds"], r["mase_full"], r["mase_reused"]
        parts.append(
            f"{freq} {sec['full_search'] / sec['fixed_forms']:.1f}x faster, "
            f"ETS MASE {num(re['ets'])} vs {num(full['ets'])}"
        )
    return "forms reused from fold 0's origin vs searched: " + "; ".join(parts)


def forward_folds(d: dict) -> str:
    parts = []
    for freq, r in d["results"].items():
        refit, forward = r["refit"], r["forward"]
        parts.append(
            f"{freq} {refit['seconds'] / forward['seconds']:.1f}x faster, ETS MASE on fold 0 "
            f"{num(forward['mase_by_fold']['ets'][0])} vs {num(refit['mase_by_fold']['ets'][0])}"
        )
    return "statistical fits carried forward from the earliest fold vs refitted: " + "; ".join(
        parts
    )


def combination_weights(d: dict) -> str:
    parts = []
    for freq, r in d["results"].items():
        choice = r["the_choice"]
        today, weighted = choice["today"]["latest"], choice["weighted_all_parts"]["latest"]
        text = f"{freq} fold 0 {num(today)} vs {num(weighted)}"
        if "held_out" in r:
            ho = r["held_out"]
            text += (
                f", held out {num(ho['today']['mase'])} vs {num(ho['weighted_all_parts']['mase'])}"
            )
        parts.append(text)
    return "MASE, the pooled choice's mean vs weights fitted on the older folds: " + "; ".join(
        parts
    )


def ratio_by_series(d: dict) -> str:
    measured = ", ".join(f"{p['series']} series {p['ratio']:.2f}x" for p in d["points"])
    cross = d["ratio_at_or_below_target_from_series"]
    at = d["ratio_by_the_lines"]["10000"]
    return (
        f"pipeline / anchor, M3 {d['frequency']}: {measured}; by straight lines through those "
        f"(extrapolated) 1.5x from about {cross} series, {at:.2f}x at 10,000"
    )


def statistical_batch(d: dict) -> str:
    runs = d["runs"]
    label = {"per_series_loop": "per-series loop"}
    parts = [
        f"{label.get(name, name.removeprefix('batched_').replace('_', ' '))} {num(r['median_s'])} s"
        for name, r in runs.items()
    ]
    diff = max(r["max_abs_diff"] for r in runs.values())
    head = f"{'+'.join(d['models'])}, {d['data'].split(' evenly')[0]}, median"
    same = "identical" if diff == 0 else f"equal to {diff:.0e}"
    return f"{head}: {', '.join(parts)}; batched forecasts {same} to the per-series ones"


def season_rule(d: dict) -> str:
    parts = []
    for freq, cuts in d["results"].items():
        n = max(cuts, key=int)
        r = cuts[n]
        parts.append(
            f"{freq} last {n}: {num(r['mase_season_allowed'])} vs {num(r['mase_non_seasonal'])}"
        )
    return "AutoETS MASE, the season allowed from one season vs two: " + "; ".join(parts)

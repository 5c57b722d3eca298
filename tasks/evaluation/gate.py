"""The evaluation gate: publish only when what would be published shows skill over seasonal naive
and is not materially worse than the champion (what was published last).

What is judged: the published mixture (`scores["published"]`, tasks/evaluation/selection.py: per
series the LSTM or its best other candidate, chosen on the older folds, scored on the latest fold)
against seasonal naive on that same fold (`scores["latest_fold"]`, per series
`scores["vs_seasonal_naive"]`); with `scores["every_series"]`, over every series scored on the
latest fold, the short ones (tasks/evaluation/short.py) too: all of what would be published.
Scores without a per-series choice (one model, as in the
benchmarks) are judged as the LSTM over every fold.

Value checks (each off when its setting is null; the defaults are the first two):
  skill overall: mean MASE < seasonal naive's mean MASE * gate.mase_ratio_below (1.0);
  skill per series: share of series whose MASE is worse than seasonal naive's
    <= gate.max_worse_series_fraction (0.5; a tie, e.g. a series published by seasonal naive,
    is not worse);
  level: mean MASE <= gate.max_mase (null);
  RMSE <= seasonal-naive RMSE * (1 - gate.min_improvement_over_seasonal_naive) (null);
  every judged metric finite;
  share of series published by another candidate than the LSTM <= gate.max_fallback_fraction
  (with a choice).
Change thresholds judge it against the champion rescored on the current folds (see
tasks/evaluation/evaluate.py for which folds), on `gate.metric` (lower is better for every metric
offered):
  worsening = challenger - champion <= gate.max_abs_change,
  relative worsening = worsening / champion <= gate.max_rel_change  (null disables either).
A first run (no champion) is judged on the value thresholds alone; so is a run whose champion
cannot be compared (params changed the horizon or transform, its series embedding has no
vector for a current series, it diverges, or it trained on every series' latest fold), which
the decision says in `champion.status` and `notes`.

Every check names the setting that governs it (`setting`); every refusal reason starts with the
failing check's name and names that setting. The
decision is a JSON-able dict holding every number it rests on, so metrics/gate.json alone
explains why a run was or was not published.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tasks.config import GateConfig
from tasks.evaluation.metrics import METRICS

MODEL = "lstm"
PUBLISHED = "published"  # the per-series mixture (tasks/evaluation/selection.py)
# The mixture over every series scored on the latest fold, short ones included
# (tasks/evaluation/short.py `every_series`): what the value checks judge when present.
EVERY_SERIES = "every_series"
REFERENCE = "seasonal_naive"
# The champion: the model published last, kept beside the store by publish (persist outs).
# Evaluate reads it as state, not as a DVC dependency: publish depends on evaluate's gate.json,
# so evaluate depending on publish's output would be a cycle.
# +1: higher is worse (errors). A metric where higher is better would be -1.
DIRECTION = {"mase": 1, "rmse": 1, "mae": 1, "smape": 1}


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _metrics(scores: Mapping[str, Any], name: str) -> dict[str, float]:
    if name not in scores:
        raise ValueError(f"scores has no {name!r} entry (got {sorted(scores)})")
    missing = [m for m in METRICS if m not in scores[name]]
    if missing:
        raise ValueError(f"scores[{name!r}] lacks {missing}")
    # None (e.g. MASE undefined for every series) becomes NaN, which fails the gate below.
    return {m: _float(scores[name][m]) for m in METRICS}


def _improvement(model_rmse: float, reference_rmse: float) -> float:
    """Fraction by which the model's RMSE is below the reference's (0.1 = 10 % lower)."""
    if reference_rmse > 0:
        return 1.0 - model_rmse / reference_rmse
    # A perfect reference: the model can only match it (0) or be infinitely worse.
    return 0.0 if model_rmse == 0 else -math.inf


def _check(name: str, value: float, threshold: float, setting: str, below: bool = False) -> dict:
    """One check: `value` <= `threshold` (`below`: strictly <), governed by `setting`."""
    # NaN <= x is False, so a non-finite value fails here too; _non_finite adds the reason.
    passed = value < threshold if below else value <= threshold
    return {"name": name, "value": value, "threshold": threshold, "passed": passed,
            "setting": setting}  # fmt: skip


def _ratio(value: float, reference: float) -> float:
    """value / reference; a perfect reference (0) is matched (1.0) or infinitely beaten."""
    if reference > 0:
        return value / reference
    if reference == 0:
        return 1.0 if value == 0 else math.inf
    return math.nan


def series_vs_reference(
    rows: Sequence[Mapping[str, Any]], reference_rows: Sequence[Mapping[str, Any]], metric="mase"
) -> dict:
    """Per series on one fold, is the judged model (`rows`, one score dict per series) worse on
    `metric` than the reference (seasonal naive)? For metrics/evaluate.json's
    "vs_seasonal_naive"; the gate's per-series check reads `worse_fraction`. Series whose
    metric is undefined for either (MASE of a constant training part) are left out; a
    non-finite judged value counts as worse."""
    pairs = [
        (_float(r[metric]), _float(ref[metric]))
        for r, ref in zip(rows, reference_rows, strict=True)
        if r[metric] is not None and ref[metric] is not None
    ]
    worse = sum(1 for value, reference in pairs if not value <= reference)
    return {
        "metric": metric,
        "series": len(rows),
        "compared": len(pairs),
        "worse": worse,
        "worse_fraction": worse / len(pairs) if pairs else None,
    }


def _non_finite(judged: Mapping[str, float], subject: str) -> list[str]:
    return [f"{subject} {m} is not finite ({v})" for m, v in judged.items() if not math.isfinite(v)]


def worsening(challenger: float, champion: float, metric: str) -> tuple[float, float]:
    """(absolute, relative) worsening of the challenger over the champion; > 0 is worse."""
    diff = DIRECTION[metric] * (challenger - champion)
    if champion != 0:
        rel = diff / abs(champion)
    else:
        rel = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff, rel


def _change_checks(comparison: Mapping[str, Any], gate: GateConfig) -> tuple[list, list, dict]:
    """Checks, failure reasons and the numbers behind them, against a compared champion."""
    metric = gate.metric
    if comparison.get("metric", metric) != metric:
        raise ValueError(
            f"the champion was compared on {comparison.get('metric')!r}, the gate wants {metric!r}"
        )
    chal, champ = _float(comparison["challenger"]), _float(comparison["champion"])
    diff, rel = worsening(chal, champ, metric)
    checks, reasons = [], []
    short = comparison.get("md5", "")[:12]
    if gate.max_abs_change is not None:
        checks.append(_check(f"{metric}_abs_change_vs_champion", diff, gate.max_abs_change,
                             "gate.max_abs_change"))  # fmt: skip
        if not checks[-1]["passed"]:
            reasons.append(
                f"{checks[-1]['name']}: challenger {metric} {chal:.4g} is {diff:.4g} worse than "
                f"the champion's {champ:.4g} (model {short}) > gate.max_abs_change "
                f"{gate.max_abs_change:.4g}"
            )
    if gate.max_rel_change is not None:
        checks.append(_check(f"{metric}_rel_change_vs_champion", rel, gate.max_rel_change,
                             "gate.max_rel_change"))  # fmt: skip
        if not checks[-1]["passed"]:
            reasons.append(
                f"{checks[-1]['name']}: challenger {metric} {chal:.4g} is {rel:.1%} worse than "
                f"the champion's {champ:.4g} (model {short}) > gate.max_rel_change "
                f"{gate.max_rel_change:.1%}"
            )
    if not (math.isfinite(chal) and math.isfinite(champ)):
        reasons.append(f"{metric} of challenger ({chal}) or champion ({champ}) is not finite")
    return checks, reasons, {"abs_change": diff, "rel_change": rel}


def _per_series(scores: Mapping[str, Any]) -> dict | None:
    return scores.get("vs_seasonal_naive")


def _value_checks(
    subject: str,
    judged: dict[str, float],
    ref: dict[str, float],
    scores: Mapping[str, Any],
    gate: GateConfig,
    notes: list[str],
) -> tuple[list[dict], list[str]]:
    """The value checks that are on (their setting not null) and the reason for each failure."""
    checks: list[dict] = []
    reasons = _non_finite(judged, subject)

    def add(check: dict, reason: str) -> None:
        checks.append(check)
        if not check["passed"]:  # the failing check's name (gate.json), then why and the setting
            reasons.append(f"{check['name']}: {reason}")

    mase, ref_mase = judged["mase"], ref["mase"]
    below = gate.mase_ratio_below
    if below is not None:
        ratio = _ratio(mase, ref_mase)
        add(
            _check(f"{subject}_mase_ratio_vs_seasonal_naive", ratio, below,
                   "gate.mase_ratio_below", below=True),
            f"{subject} MASE {mase:.4g} is not below seasonal naive's {ref_mase:.4g} on the same "
            f"fold and series x gate.mase_ratio_below {below:.4g} (ratio {ratio:.4g})",
        )  # fmt: skip
    if gate.max_worse_series_fraction is not None:
        per_series = _per_series(scores) if subject == PUBLISHED else None
        share = None if per_series is None else per_series.get("worse_fraction")
        if share is None:
            notes.append(
                "gate.max_worse_series_fraction not judged: no per-series comparison with "
                "seasonal naive (scores without a per-series choice, or no series with a MASE)"
            )
        else:
            limit = gate.max_worse_series_fraction
            add(
                _check("worse_than_seasonal_naive_fraction_max", share, limit,
                       "gate.max_worse_series_fraction"),
                f"{share:.1%} of series ({per_series['worse']} of {per_series['compared']}) score "
                f"a worse MASE than seasonal naive on the latest fold > "
                f"gate.max_worse_series_fraction {limit:.1%}",
            )  # fmt: skip
    if gate.max_mase is not None:
        add(
            _check(f"{subject}_mase_max", mase, gate.max_mase, "gate.max_mase"),
            f"{subject} MASE {mase:.4g} > gate.max_mase {gate.max_mase:.4g}",
        )
    margin = gate.min_improvement_over_seasonal_naive
    if margin is not None:
        threshold = ref["rmse"] * (1.0 - margin)
        add(
            _check(f"{subject}_rmse_vs_seasonal_naive", judged["rmse"], threshold,
                   "gate.min_improvement_over_seasonal_naive"),
            f"{subject} RMSE {judged['rmse']:.4g} > seasonal naive RMSE {ref['rmse']:.4g} * "
            f"(1 - gate.min_improvement_over_seasonal_naive {margin:.4g}) = {threshold:.4g}",
        )  # fmt: skip
    selection = scores.get("selection") if subject == PUBLISHED else None
    if selection is not None:
        fraction = float(selection["fallback_fraction"])
        add(
            _check("fallback_fraction_max", fraction, gate.max_fallback_fraction,
                   "gate.max_fallback_fraction"),
            f"{fraction:.1%} of series would be published by another model than the LSTM "
            f"({selection['counts']}) > gate.max_fallback_fraction "
            f"{gate.max_fallback_fraction:.1%}",
        )  # fmt: skip
    return checks, reasons


def decide(
    scores: Mapping[str, Any],
    gate: GateConfig,
    comparison: Mapping[str, Any] | None = None,
) -> dict:
    """Gate on `scores` (metrics/evaluate.json: {"published": {...}, "latest_fold": {...},
    "selection": {...}, "lstm": {...}, "seasonal_naive": {...}, ...}; without "published" the
    LSTM is judged against seasonal naive over every fold) and, when there is a champion, on
    `comparison` (tasks.evaluation.evaluate.compare_champion: {"status", "metric", "champion",
    "challenger", ...}).
    """
    subject = PUBLISHED if PUBLISHED in scores else MODEL
    every = scores.get(EVERY_SERIES) if subject == PUBLISHED else None
    if every and every.get(PUBLISHED) and every.get(REFERENCE):
        # Every series published and scored on the latest fold, the short ones too.
        scores = {
            **scores,
            PUBLISHED: every[PUBLISHED],
            "vs_seasonal_naive": every["vs_seasonal_naive"],
        }
        scores["latest_fold"] = {**scores.get("latest_fold", {}), REFERENCE: every[REFERENCE]}
    judged = _metrics(scores, subject)
    # The reference is scored on the same fold-series pairs as what is judged.
    ref = _metrics(scores["latest_fold"] if subject == PUBLISHED else scores, REFERENCE)
    lstm = _metrics(scores, MODEL)
    notes: list[str] = []
    checks, reasons = _value_checks(subject, judged, ref, scores, gate, notes)
    selection = scores.get("selection") if subject == PUBLISHED else None
    champion: dict | None = None
    if comparison is None:
        notes.append("first run: no champion yet, judged on the value thresholds alone")
    else:
        champion = dict(comparison)
        if comparison.get("status") == "compared":
            change_checks, change_reasons, numbers = _change_checks(comparison, gate)
            checks += change_checks
            reasons += change_reasons
            champion.update(numbers)
        else:
            notes.append(
                f"champion not compared ({comparison.get('status')}): "
                f"{comparison.get('reason', 'no reason given')}; judged on the value thresholds"
            )
    return {
        "passed": not reasons,
        "reasons": reasons,
        "checks": checks,
        "notes": notes,
        "first_run": comparison is None,
        "judged": subject,
        **({PUBLISHED: judged, "selection": selection} if subject == PUBLISHED else {}),
        "lstm": lstm,
        "seasonal_naive": ref,
        "improvement_over_seasonal_naive": _improvement(judged["rmse"], ref["rmse"]),
        "mase_ratio_vs_seasonal_naive": _ratio(judged["mase"], ref["mase"]),
        **({"vs_seasonal_naive": _per_series(scores)} if subject == PUBLISHED else {}),
        "champion": champion,
        "gate": gate.model_dump(),
    }

"""The evaluation gate: publish only a model that is good enough and beats seasonal naive.

The decision is a JSON-able dict holding every number it rests on, so metrics/gate.json alone
explains why a run was or was not published.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tasks.config import GateConfig
from tasks.metrics import METRICS

MODEL = "lstm"
REFERENCE = "seasonal_naive"


def _metrics(scores: Mapping[str, Any], name: str) -> dict[str, float]:
    if name not in scores:
        raise ValueError(f"scores has no {name!r} entry (got {sorted(scores)})")
    missing = [m for m in METRICS if m not in scores[name]]
    if missing:
        raise ValueError(f"scores[{name!r}] lacks {missing}")
    return {m: float(scores[name][m]) for m in METRICS}


def _improvement(model_rmse: float, reference_rmse: float) -> float:
    """Fraction by which the model's RMSE is below the reference's (0.1 = 10 % lower)."""
    if reference_rmse > 0:
        return 1.0 - model_rmse / reference_rmse
    # A perfect reference: the model can only match it (0) or be infinitely worse.
    return 0.0 if model_rmse == 0 else -math.inf


def _check(name: str, value: float, threshold: float) -> dict:
    # NaN <= x is False, so a non-finite value fails here too; _non_finite adds the reason.
    return {"name": name, "value": value, "threshold": threshold, "passed": value <= threshold}


def _non_finite(lstm: Mapping[str, float]) -> list[str]:
    return [f"{MODEL} {m} is not finite ({v})" for m, v in lstm.items() if not math.isfinite(v)]


def decide(scores: Mapping[str, Any], gate: GateConfig) -> dict:
    """Gate the model on `scores` ({"lstm": {...}, "seasonal_naive": {...}, ...}, series means;
    other entries such as "naive" or "n_series" are ignored).

    Passes iff lstm MASE <= gate.max_mase and lstm RMSE <= seasonal-naive RMSE * (1 - margin),
    and every lstm metric is finite.
    """
    lstm = _metrics(scores, MODEL)
    ref = _metrics(scores, REFERENCE)
    margin = gate.min_improvement_over_seasonal_naive
    rmse_threshold = ref["rmse"] * (1.0 - margin)
    checks = [
        _check("lstm_mase_max", lstm["mase"], gate.max_mase),
        _check("lstm_rmse_vs_seasonal_naive", lstm["rmse"], rmse_threshold),
    ]
    reasons = _non_finite(lstm)
    if not checks[0]["passed"]:
        reasons.append(f"lstm MASE {lstm['mase']:.4g} > gate.max_mase {gate.max_mase:.4g}")
    if not checks[1]["passed"]:
        reasons.append(
            f"lstm RMSE {lstm['rmse']:.4g} > seasonal naive RMSE {ref['rmse']:.4g} * "
            f"(1 - gate.min_improvement_over_seasonal_naive {margin:.4g}) = {rmse_threshold:.4g}"
        )
    return {
        "passed": not reasons,
        "reasons": reasons,
        "checks": checks,
        "lstm": lstm,
        "seasonal_naive": ref,
        "improvement_over_seasonal_naive": _improvement(lstm["rmse"], ref["rmse"]),
        "gate": {
            "max_mase": gate.max_mase,
            "min_improvement_over_seasonal_naive": margin,
        },
    }

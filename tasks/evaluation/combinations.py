"""Combinations: candidates that forecast the plain mean of other models' forecasts.

Why: averaging forecasts beat choosing one in the M competitions (M4's best statistical entries
were combinations), and the per-series choice on two older folds is a noisy pick
(tasks/evaluation/shrinkage.py); a mean of two or three good models rarely is the worst choice.
On M3's training parts (benchmarks/results/choice_margin.json, the training part's last horizon
scored) the mean of ETS and Theta beat both on monthly (0.882 vs Theta 0.904, ETS 0.939),
quarterly (1.064 vs 1.113, 1.073) and other (1.928 vs 2.045, 1.991), and fell between them on
yearly (4.411 vs 4.390, 4.479).

- `mean_ets_theta`: AutoETS and AutoTheta (tasks/evaluation/statistical.py);
- `mean_lstm_ets_theta`: the LSTM, AutoETS and AutoTheta (only where the LSTM forecasts: never
  for a series too short for it);
- `mean_ets_theta_ces`, `mean_lstm_ets_theta_ces`: the same with AutoCES as a third (fourth)
  opinion. Listed by hand, not by `auto`: on M3's tuning split (training parts, their last
  horizon scored) the three-model mean beat the two-model one as a model alone (monthly 0.870 vs
  0.878, quarterly 1.075 vs 1.092, yearly 3.260 vs 3.386; other 1.946 vs 1.928), but adding both
  to auto's list moved the published mixture by -2.5 % on quarterly and +1.4 % on monthly, and
  less than 0.5 % on yearly and other (docs/decisions.md).

A combination is a candidate like any other: scored on every backtest fold, chosen per series on
the older folds, published with conformal intervals from its own residuals. Its parts are scored
whenever it is listed (`parts_to_score`). Pure numpy over forecasts in original units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

LSTM = "lstm"
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "mean_ets_theta": ("ets", "theta"),
    "mean_lstm_ets_theta": (LSTM, "ets", "theta"),
    "mean_ets_theta_ces": ("ets", "theta", "ces"),
    "mean_lstm_ets_theta_ces": (LSTM, "ets", "theta", "ces"),
}
# The combinations without the network: forecastable from a history alone (short series too).
STATISTICAL_COMBINATIONS = {k: v for k, v in COMBINATIONS.items() if LSTM not in v}


def is_combination(name: str) -> bool:
    return name in COMBINATIONS


def needs_lstm(name: str) -> bool:
    return LSTM in COMBINATIONS.get(name, ())


def parts_to_score(names: Sequence[str]) -> tuple[str, ...]:
    """The models `names` need scored: each name, and every part of each combination among them
    (order kept, no repeats)."""
    out: list[str] = []
    for name in names:
        for part in (*COMBINATIONS.get(name, ()), name):
            if part not in out:
                out.append(part)
    return tuple(out)


def combine(
    name: str, preds: Mapping[str, np.ndarray], parts: Sequence[str] | None = None
) -> np.ndarray:
    """Combination `name`'s forecasts: the mean of its parts' (same shape) forecasts (`parts`:
    these instead of the registered ones)."""
    parts = COMBINATIONS[name] if parts is None else tuple(parts)
    missing = [p for p in parts if p not in preds]
    if missing:
        raise ValueError(f"{name} needs the forecasts of {missing}")
    return np.mean([np.asarray(preds[p], dtype=np.float64) for p in parts], axis=0)

"""Combinations: candidates that forecast the plain mean of other models' forecasts.

Why: averaging forecasts beat choosing one in the M competitions (M4's best statistical entries
were combinations), and the per-series choice on two older folds is a noisy pick
(tasks/evaluation/shrinkage.py); a mean of two or three good models rarely is the worst choice.
On M3's training parts (benchmarks/results/choice_margin.json, the training part's last horizon
scored) the mean of ETS and Theta beat both on monthly (0.882 vs Theta 0.904, ETS 0.939),
quarterly (1.064 vs 1.113, 1.073) and other (1.928 vs 2.045, 1.991), and fell between them on
yearly (4.411 vs 4.390, 4.479).

The family (tasks/config/choices.py `COMBINATIONS`): every mean of two or more of the LSTM,
drift, AutoETS, AutoTheta and AutoCES that holds at least one of the three smoothers, named
`mean_` + its parts (`mean_ets_theta`, `mean_lstm_ets_theta_ces`, `mean_drift_ets`): 25 in all,
any of which `evaluate.candidates` may list. One with the LSTM forecasts only where the LSTM does
(never for a series too short for it). Drift is there for trending data: a smoother's damped or
flat trend averaged with the straight line through the first and last values.

`auto` lists four (tasks/config/auto.py): the means of ETS and Theta and of ETS, Theta and CES,
with and without the LSTM. Listing all 25, or those four with drift added to each, was measured
on M3's tuning split and not kept: the pooled choice (tasks/evaluation/shrinkage.py) picks the
combination best over all series on the two older folds, and with more options to pick among,
what those folds preferred moved yearly's published MASE down and other frequencies' up
(docs/decisions.md "The choice pools").

A combination is a candidate like any other: scored on every backtest fold, chosen per series on
the older folds, published with conformal intervals from its own residuals. Its parts are scored
whenever it is listed (`parts_to_score`). Pure numpy over forecasts in original units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tasks.config.choices import COMBINATIONS

LSTM = "lstm"
__all__ = ["COMBINATIONS", "STATISTICAL_COMBINATIONS", "combine", "is_combination"]
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

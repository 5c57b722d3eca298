"""Shrink the per-series choice toward the overall best model (`evaluate.choice_margin`).

A series' own best model on two or three older folds is a noisy pick. On M3 (the tuning set;
scored on fold 0, which the choice never sees; benchmarks/results/choice_margin.json) a margin of
10 % toward the model best over all series beat the plain per-series choice in 8 of 9 (frequency,
candidate set) cases, e.g. quarterly with theta and ets 1.091 vs 1.100 mean MASE, other 1.816 vs
1.838, yearly 2.617 vs 2.644; it lost only on quarterly with the baselines alone (1.208 vs 1.181).
So a series keeps its own best only where that beats
the overall best on the same series by more than the margin; otherwise it is published by the
overall best. Margin 0 is the plain per-series choice. Pure functions over the evidence the
choice already rests on (per series: the metric and each model's mean over the older folds).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def overall_best(evidence: Sequence[dict], names: Sequence[str]) -> str | None:
    """The model of `names` with the lowest mean over series of its per-series mean, among the
    series whose evidence holds every name and ranks by the metric most series rank by (the
    gate's; a series whose MASE is undefined ranks by MAE and is left out). Ties: the first
    listed. None when no series qualifies."""
    rows = [e for e in evidence if all(e.get(n) is not None for n in names)]
    if not rows:
        return None
    metric = Counter(e.get("metric") for e in rows).most_common(1)[0][0]
    rows = [e for e in rows if e.get("metric") == metric]
    means = {n: float(np.mean([e[n] for e in rows])) for n in names}
    return min(names, key=lambda n: means[n])


def shrink(
    choices: Sequence[str], evidence: Sequence[dict], best: str | None, margin: float
) -> list[bool]:
    """Per series: True where its choice gives way to `best` (its own choice does not beat
    `best` on its evidence by more than `margin`, as a fraction of `best`'s mean there)."""
    if best is None or margin <= 0:
        return [False] * len(choices)
    out = []
    for chosen, e in zip(choices, evidence, strict=True):
        own, overall = e.get(chosen), e.get(best)
        out.append(
            chosen != best
            and own is not None
            and overall is not None
            and not own < (1.0 - margin) * overall
        )
    return out

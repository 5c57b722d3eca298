"""Shrink the per-series choice toward the overall best model (`evaluate.choice_margin`).

A series' own best model on two or three older folds is a noisy pick. On M3's training parts (the
tuning set, the test period withheld; scored on the training part's last horizon, which the choice
never sees; benchmarks/results/choice_margin.json), with the candidates `auto` gives many series
(baselines, theta, ets, their means), the mean MASE per margin 0 / 0.1 / 0.3 / 0.5 was: monthly
0.906 / 0.902 / 0.882 / 0.878, quarterly 1.052 / 1.046 / 1.052 / 1.062, other 1.993 / 1.965 /
1.947 / 1.946, yearly 4.353 / 4.413 / 4.441 / 4.461. 0.3 (params.yaml) is the lowest mean ratio to
each frequency's best margin (1.0085, 0.1: 1.0134); yearly, where drift wins and the overall best
on the older folds (ETS) is not the best on the latest, prefers no shrinkage.
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

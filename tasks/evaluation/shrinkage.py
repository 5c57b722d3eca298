"""Shrink the per-series choice toward an anchor (`evaluate.choice_margin`, `shrink_toward`).

A series' own best model on two or three older folds is a noisy pick (on M3's training parts
it is the best on the latest fold for 19-27 % of the LSTM series: benchmarks/results/
choice_ablation.json). So a series keeps its own best only where that beats the anchor on the
same series' older folds by more than the margin; otherwise it is published by the anchor.
Margin 0 is the plain per-series choice. The anchor (`shrink_toward: best`) is the
model best over all series on the older folds, combination or not; `combination`: the best
combination there, or the best model where no combination is listed.

The defaults (0.99 toward the best combination: in effect every series publishes the run's best
combination) were tuned on M3's tuning split, where each step toward pooling lowered the
published MASE (docs/decisions.md "The choice pools"; the older 0.3 toward the best model was
tuned on the pipeline's own fold 0 and is recorded there too).

Pure functions over the evidence the choice already rests on (per series: the metric and each
model's mean over the older folds).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from tasks.evaluation.combinations import is_combination


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


def anchor(evidence: Sequence[dict], names: Sequence[str], toward: str = "best") -> str | None:
    """What a series' own best gives way to (`evaluate.shrink_toward`): `overall_best` among the
    combinations of `names` (toward "combination", where any is listed), else among all `names`."""
    combos = [n for n in names if is_combination(n)]
    pool = combos if toward == "combination" and combos else list(names)
    return overall_best(evidence, pool)


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

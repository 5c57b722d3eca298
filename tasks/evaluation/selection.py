"""Per-series model choice: for each series, publish the LSTM where it beats the best of the other
candidates (`evaluate.candidates`: the naive baselines, tasks/evaluation/baselines.py, and the
statistical models, tasks/evaluation/statistical.py) on that series, else that candidate. Pure
functions over the backtest's FoldResults.

Leak-free by construction: the choice is made on the older folds (1 .. n_windows - 1) and the
published mixture is scored on the latest fold (0) alone, which the choice never looked at. So
the mixture's reported figure (`"published"` in metrics/evaluate.json) is an out-of-sample
estimate of what publishing it does, not the best of four models picked on its own test data.
That needs two folds or more (`require_folds`).

On fold 0 an LSTM-chosen series is scored by the final fold-0 model (trained through fold 0's
origin, the model closest to the one shipped), any other by that candidate.

Intervals: every candidate gets split-conformal intervals by the same method as the LSTM
(tasks/evaluation/intervals.py): absolute residuals in the scaled space, pooled over folds and
series, one width per horizon step. A series is published with the intervals of the model it
publishes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tasks.config import Config
from tasks.errors import PipelineError
from tasks.evaluation import intervals, shrinkage
from tasks.evaluation.backtest import FoldResult, mean_scores
from tasks.evaluation.short import ShortChoice
from tasks.evaluation.short import summary as short_summary

LSTM = "lstm"
# Used to rank the candidates of a series whose gate metric is undefined (MASE of a series with
# a constant training part): MAE ranks the same models within one series, scale-free there.
FALLBACK_METRIC = "mae"


class SelectionError(PipelineError):
    """The per-series model choice cannot be made as configured."""


def require_folds(cfg: Config) -> None:
    """The choice needs folds it does not score: stop before any work when there are none."""
    if cfg.evaluate.n_windows < 2:
        raise SelectionError(
            f"evaluate.n_windows is {cfg.evaluate.n_windows}: the per-series model choice is "
            "made on the older backtest folds and scored on the latest one, so it needs "
            "evaluate.n_windows >= 2; set it in params.yaml (and keep the series long enough: "
            "each extra fold needs evaluate.step more steps)"
        )


# ---------------------------------------------------------------- residuals
def scaled_forecast(r: FoldResult, name: str, s: int) -> np.ndarray:
    """Candidate `name`'s fold forecast of series s in the model's scaled space."""
    if name == LSTM:
        return r.lstm_scaled[s]
    p = r.prepared
    pred = np.asarray(r.preds[name][s], dtype=np.float64)
    return to_scaled(p, s, pred)


def positive_floor(pred: np.ndarray, history: np.ndarray) -> np.ndarray:
    """`pred` with each value <= 0 (no log) raised to the smallest positive value of `history`;
    positive values as they are, below the history's minimum too (a falling series' forecast)."""
    pred = np.asarray(pred, dtype=np.float64)
    if (pred > 0).all():
        return pred
    floor = float(history[history > 0].min()) if (history > 0).any() else 1e-12
    return np.where(pred > 0, pred, floor)


def to_scaled(prepared, s: int, pred: np.ndarray) -> np.ndarray:
    """Original-unit forecasts of series s in the scaled space. Under the log transform a
    baseline may forecast <= 0 (drift on a falling series), which has no log: such values are
    raised to the smallest positive value of the series for the interval arithmetic (asinh,
    `prepare.transform: auto`'s other kind, takes any value)."""
    if prepared.transform.kind(str(prepared.series_ids[s])) == "log":
        pred = positive_floor(pred, prepared.raw[prepared.series(s)])
    return prepared.transform.transform(str(prepared.series_ids[s]), pred)


def residuals(r: FoldResult, name: str) -> np.ndarray:
    """(S, H) scaled residuals (actual - forecast) of candidate `name` on one fold."""
    if name == LSTM:
        return r.residuals
    return np.stack(
        [r.actual_scaled[s] - scaled_forecast(r, name, s) for s in range(len(r.scales))]
    )


# ---------------------------------------------------------------- the choice
def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


DEFAULT_CANDIDATES = ("naive", "seasonal_naive", "drift")


def choose(
    results: list[FoldResult],
    metric: str,
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
    margin: float = 0.0,
    toward: str = "best",
) -> tuple[list[str], list[dict]]:
    """Per series: the model to publish (the LSTM or one of `candidates`), chosen on folds 1..
    (never fold 0), and the mean metric of each there (what the choice rests on). With a
    `margin` (evaluate.choice_margin), a series' own best gives way to the anchor (the best
    model over all series, or the best combination: `toward`, evaluate.shrink_toward) unless it
    beats that by more than the margin there (tasks/evaluation/shrinkage.py)."""
    older = [r for r in results if r.fold > 0]
    if not older:
        raise SelectionError("no fold older than the latest to choose on (evaluate.n_windows)")
    missing = [name for name in candidates if name not in older[0].scores]
    if missing:
        raise SelectionError(f"candidates {missing} were not scored by the backtest")
    names = (LSTM, *candidates)
    choices, evidence = [], []
    for s in range(len(older[0].scales)):
        by = metric
        means = {name: _mean([r.scores[name][s][by] for r in older]) for name in names}
        if any(v is None for v in means.values()):
            by = FALLBACK_METRIC
            means = {name: _mean([r.scores[name][s][by] for r in older]) for name in names}
        # min keeps the first of equals: on a tie the earlier candidate is published.
        best_other = min(candidates, key=lambda n: means[n])
        # Strictly better: on a tie the other candidate (no network to run or trust) is published.
        chosen = LSTM if means[LSTM] < means[best_other] else best_other
        choices.append(chosen)
        evidence.append({"metric": by, **means})
    best = shrinkage.anchor(evidence, names, toward)
    for s, yields in enumerate(shrinkage.shrink(choices, evidence, best, margin)):
        if yields:
            choices[s] = best
            evidence[s] = {**evidence[s], "overall_best": best}
    return choices, evidence


@dataclass
class Selection:
    series_ids: list[str]
    choices: list[str]  # per series, the LSTM or a name of `candidates`
    evidence: list[dict]  # per series: the metric and each candidate's mean on folds 1..
    calibrations: dict[str, intervals.Calibration]  # per candidate, every fold pooled
    published: dict  # mixture scores on fold 0 (+ coverage_L)
    latest_fold: dict  # per candidate, its scores on fold 0 (what `published` is compared with)
    metric: str
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    reasons: list[str] = field(default_factory=list)  # per series: why its model (published)
    # The short series (tasks/evaluation/short.py), after the LSTM series in every list above;
    # the counts and fallback fraction are of the LSTM series, which the LSTM could serve.
    short: list[ShortChoice] = field(default_factory=list)

    @property
    def lstm_series(self) -> int:
        return len(self.choices) - len(self.short)

    @property
    def counts(self) -> dict[str, int]:
        chosen = self.choices[: self.lstm_series]
        return {name: chosen.count(name) for name in (LSTM, *self.candidates)}

    @property
    def fallback_fraction(self) -> float:
        if not self.lstm_series:
            return 0.0
        return 1.0 - self.choices.count(LSTM) / self.lstm_series

    def add_short(self, short: list[ShortChoice]) -> None:
        """Append the short series' choices (tasks/evaluation/short.py)."""
        self.short = [*self.short, *short]
        self.series_ids += [c.series_id for c in short]
        self.choices += [c.model for c in short]
        self.evidence += [c.evidence for c in short]
        self.reasons += [c.reason for c in short]

    def summary(self, n_windows: int) -> dict:
        """The choice in metrics/evaluate.json: counts, and which folds chose and scored; the
        short series' counts and reasons apart (`short_series`), every series under
        `published_by` (model -> reason -> series)."""
        by: dict[str, Counter] = {}
        for name, reason in zip(self.choices, self.reasons, strict=True):
            by.setdefault(name, Counter())[_reason_kind(reason)] += 1
        return {
            "metric": self.metric,
            "candidates": [LSTM, *self.candidates],
            "chosen_on_folds": list(range(1, n_windows)),
            "scored_on_fold": 0,
            "counts": self.counts,
            "fallback_fraction": self.fallback_fraction,
            "published_by": {name: dict(sorted(c.items())) for name, c in sorted(by.items())},
            # every series by why its model (benchmarks/many_series.py reports it as fell_back)
            "reasons": dict(sorted(Counter(_reason_kind(r) for r in self.reasons).items())),
            "short_series": short_summary(self.short),
        }

    def to_json(self) -> dict:
        """models/selection.json: what publish needs (a model, its reason and intervals per
        series)."""
        return {
            "metric": self.metric,
            "choices": dict(zip(self.series_ids, self.choices, strict=True)),
            "reasons": dict(zip(self.series_ids, self.reasons, strict=True)),
            "evidence": dict(zip(self.series_ids, self.evidence, strict=True)),
            "intervals": {name: cal.to_json() for name, cal in self.calibrations.items()},
        }


def _reason(evidence: dict, older: int) -> str:
    if "overall_best" in evidence:
        return f"overall best on {folds_text(older)} (its own best within evaluate.choice_margin)"
    return f"chosen on {folds_text(older)}"


def folds_text(n: int) -> str:
    return f"{n} fold{'s' * (n != 1)}"


def _reason_kind(reason: str) -> str:
    """A reason without its numbers: what metrics/evaluate.json counts series by."""
    return re.sub(r"\s*\([^)]*\)", "", re.sub(r"\d+ folds?", "N folds", reason))


def load_choices(raw: dict) -> tuple[dict[str, str], dict[str, intervals.Calibration]]:
    """(series -> model, model -> calibration) from models/selection.json."""
    cals = {
        name: intervals.Calibration.from_json(c) for name, c in raw.get("intervals", {}).items()
    }
    return dict(raw["choices"]), cals


def load_reasons(raw: dict) -> dict[str, str]:
    """Series -> why its model, from models/selection.json (empty for a file written before
    reasons were recorded)."""
    return dict(raw.get("reasons") or {})


def select(results: list[FoldResult], final: FoldResult, cfg: Config) -> Selection:
    """Choose per series on folds 1.., score the mixture on fold 0 (`final`: fold 0 scored by
    the final model), calibrate every candidate's intervals."""
    require_folds(cfg)
    levels = tuple(cfg.evaluate.levels)
    metric = cfg.gate.metric
    candidates = tuple(cfg.evaluate.candidates)
    choices, evidence = choose(
        results, metric, candidates, cfg.evaluate.choice_margin, cfg.evaluate.shrink_toward
    )
    fold0 = dict(final.scores)  # every scored model, the baselines beside the candidates
    rows = [fold0[c][s] for s, c in enumerate(choices)]
    published: dict = mean_scores(rows)

    # Coverage of the published intervals on fold 0, with widths calibrated on the other folds
    # only (what a new period would see), each series under its own model's intervals.
    older = [r for r in results if r.fold > 0]
    hits = {lv: [] for lv in levels}
    held_out = {}
    for name in set(choices):
        stacked = np.stack([residuals(r, name) for r in older])
        held_out[name] = intervals.calibrate(stacked.reshape(-1, stacked.shape[-1]), levels)
    # Each published model's fold-0 residuals once, not once per series that publishes it.
    latest = {name: np.abs(residuals(final, name)) for name in set(choices)}
    for s, name in enumerate(choices):
        res = latest[name][s]
        for lv in levels:
            hits[lv].append(res <= held_out[name].widths[lv])
    for lv in levels:
        published[f"coverage_{lv}"] = float(np.mean(np.concatenate(hits[lv])))

    calibrations = {}
    # Every scored candidate, not only the listed ones: a short series may be published by a
    # baseline by default (tasks/evaluation/short.py). The LSTM's own is models/intervals.json.
    for name in (n for n in results[0].preds if n != LSTM):
        stacked = np.stack([residuals(r, name) for r in results])
        calibrations[name] = intervals.calibrate(stacked.reshape(-1, stacked.shape[-1]), levels)
    return Selection(
        series_ids=[str(sid) for sid in final.prepared.series_ids],
        choices=choices,
        evidence=evidence,
        calibrations=calibrations,
        published=published,
        latest_fold={name: mean_scores(rows) for name, rows in fold0.items()},
        metric=metric,
        candidates=candidates,
        reasons=[_reason(e, len(older)) for e in evidence],
    )

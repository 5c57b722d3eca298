"""Short series: those with fewer steps than the LSTM needs (Config.lstm_history), which prepare
keeps out of the LSTM's training and candidacy. They are not broken data: each is backtested
on the folds its history has and published by a candidate that can be fitted on it. Pure
functions over one series' values at a time.

Folds. Fold k of a series of N steps has origin N - H - k * step (H = forecast.horizon), as
for every series (tasks/evaluation/backtest.py); it exists for a short series when its origin
leaves at least Config.min_history steps before it. A candidate is scored on a fold only when it
can be fitted on the history before that origin (`NEEDS`: seasonal naive a full season, drift
two steps, the others one).

Choice. As for the LSTM series (tasks/evaluation/selection.py): the candidate (of
`evaluate.candidates`) with the lowest mean `gate.metric` on the older folds (k >= 1) the series
has, among the candidates fitted on all of them; fold 0 is never looked at. A series with no
older fold is published by a fixed rule, never by its scores: seasonal naive when its history
holds a full season (the gate's reference), else naive (`DEFAULT_ORDER`); with shrinkage on
(`evaluate.choice_margin` > 0) such a series instead gives way to the short series' anchor, as
every series without decisive evidence does (tasks/evaluation/shrinkage.py): the candidate best
over the short series that have older folds. Every choice carries its reason, which publish
writes on each row (column `reason`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config
from tasks.evaluation import metrics, shrinkage
from tasks.evaluation.backtest import mean_scores
from tasks.evaluation.baselines import forecast_all
from tasks.evaluation.combinations import (
    STATISTICAL_COMBINATIONS,
    combine,
    needs_lstm,
    parts_to_score,
)
from tasks.evaluation.gate import REFERENCE, series_vs_reference
from tasks.evaluation.statistical import STATISTICAL
from tasks.progress import Progress

LSTM = "lstm"
# Fewest history steps each candidate is fitted on; every other candidate needs one.
# seasonal_naive's is the season length (filled in by `needs`).
NEEDS = {"drift": 2}
# The fixed rule for a series with no older fold: the first of these its history can fit.
DEFAULT_ORDER = ("seasonal_naive", "naive")
FALLBACK_METRIC = "mae"  # as in selection.py: ranks within one series when MASE is undefined


def short_candidates(cfg: Config) -> tuple[str, ...]:
    """The candidates a series without the LSTM can have: `evaluate.candidates` less the LSTM
    and its combinations."""
    return tuple(c for c in cfg.evaluate.candidates if c != LSTM and not needs_lstm(c))


def needs(name: str, season_length: int) -> int:
    """Fewest history steps candidate `name` is fitted on (a combination: its parts' most)."""
    parts = STATISTICAL_COMBINATIONS.get(name)
    if parts:
        return max(needs(p, season_length) for p in parts)
    return season_length if name == "seasonal_naive" else NEEDS.get(name, 1)


def available_folds(n: int, cfg: Config) -> list[int]:
    """The folds (0 = latest) a series of `n` steps has: those whose origin leaves at least
    Config.min_history steps before it."""
    h, step = cfg.forecast.horizon, cfg.evaluate.step
    return [k for k in range(cfg.evaluate.n_windows) if n - h - k * step >= cfg.min_history]


def _scale(insample: np.ndarray, m: int) -> float | None:
    """MASE's denominator, None where the history is too short for it or it is 0 (then MASE
    is undefined and the choice ranks by MAE, as for a constant series)."""
    if insample.size <= m:
        return None
    scale = metrics.seasonal_naive_scale(insample, m)
    return scale if scale > 0 else None


def score(actual: np.ndarray, pred: np.ndarray, insample: np.ndarray, m: int) -> dict:
    scale = _scale(insample, m)
    return {
        name: None if name in metrics.SCALED and scale is None else metric(actual, pred, scale)
        for name, metric in metrics.METRICS.items()
    }


def default_model(n: int, season_length: int) -> str:
    """The candidate a series with no older fold is published by (module docstring)."""
    return next(name for name in DEFAULT_ORDER if n >= needs(name, season_length))


@dataclass
class ShortChoice:
    series_id: str
    steps: int
    model: str
    reason: str
    folds: list[int]  # the folds the series has (0 = latest)
    evidence: dict  # the metric and each candidate's mean on the older folds (empty: none)
    fold0: dict[str, dict] = field(default_factory=dict)  # candidate -> its scores on fold 0


# (candidate, histories, horizon, season_length) -> one (horizon,) forecast per history
Forecast = Callable[[str, list[np.ndarray], int, int], list[np.ndarray]]


def forecast_batch(name: str, histories: list[np.ndarray], h: int, m: int) -> list[np.ndarray]:
    """One forecast per history by candidate `name`, all at once (baselines.forecast_all: one
    batched statsforecast fit for a statistical candidate). `choose_all` and publish's
    short_forecasts make one call per candidate and fold, never one per series."""
    return list(forecast_all([name], histories, h, m)[name])


def origin(n: int, k: int, cfg: Config) -> int:
    """Fold k's origin (first forecast step) in a series of n steps."""
    return n - cfg.forecast.horizon - k * cfg.evaluate.step


def fold_scores(
    values: dict[str, np.ndarray], cfg: Config, names: tuple[str, ...], forecast: Forecast
) -> dict[str, dict[int, dict[str, dict]]]:
    """Series -> fold -> candidate -> scores, on the folds each series has and for the candidates
    the history before each origin fits: one `forecast` call per fold and candidate; a
    combination of candidates scored on the same fold is their mean, not fitted again. Logs
    progress (fits done, rate, ETA) while the statistical fits run."""
    h, m = cfg.forecast.horizon, cfg.data.season_length
    out: dict[str, dict[int, dict[str, dict]]] = {
        sid: {k: {} for k in available_folds(v.size, cfg)} for sid, v in values.items()
    }
    names = parts_to_score(names)  # parts before their combinations
    plan = []
    for k in range(cfg.evaluate.n_windows):
        for name in names:
            jobs = [
                sid
                for sid, v in values.items()
                if k in out[sid] and origin(v.size, k, cfg) >= needs(name, m)
            ]
            if jobs:
                plan.append((k, name, jobs))
    fits = sum(len(jobs) for _, name, jobs in plan if name in STATISTICAL)
    progress = Progress("short series: fitting on their folds", fits, "fits") if fits else None
    done = 0
    made: dict[tuple[int, str], dict[str, np.ndarray]] = {}  # (fold, candidate) -> forecasts
    for k, name, jobs in plan:
        cuts = [origin(values[sid].size, k, cfg) for sid in jobs]
        parts = STATISTICAL_COMBINATIONS.get(name, ())
        if parts and all(sid in made.get((k, p), {}) for p in parts for sid in jobs):
            preds = [combine(name, {p: made[(k, p)][sid] for p in parts}) for sid in jobs]
        else:
            histories = [values[sid][:o] for sid, o in zip(jobs, cuts, strict=True)]
            preds = forecast(name, histories, h, m)
        made[(k, name)] = dict(zip(jobs, preds, strict=True))
        for sid, o, pred in zip(jobs, cuts, preds, strict=True):
            y = values[sid]
            out[sid][k][name] = score(y[o : o + h], pred, y[:o], m)
        if progress is not None and name in STATISTICAL:
            done += len(jobs)
            progress.update(done)
    if progress is not None:
        progress.done()
    return out


def choose(sid: str, n: int, by_fold: dict[int, dict[str, dict]], cfg: Config) -> ShortChoice:
    """One short series' candidate from its fold scores (module docstring), and why."""
    m = cfg.data.season_length
    candidates = short_candidates(cfg)
    folds = sorted(by_fold)
    older = [k for k in folds if k > 0]
    # Only candidates scored on every older fold compete (a mean over fewer folds is not
    # comparable); the oldest fold has the shortest history, so those fitted there.
    fitted = [c for c in candidates if older and c in by_fold[max(older)]]
    too_short = f"too short for the LSTM ({n} < {cfg.lstm_history} steps)"
    evidence: dict = {}
    if fitted:
        by = cfg.gate.metric
        means = {c: _mean([by_fold[k][c][by] for k in older]) for c in fitted}
        if any(v is None for v in means.values()):
            by = FALLBACK_METRIC
            means = {c: _mean([by_fold[k][c][by] for k in older]) for c in fitted}
        model = min(fitted, key=lambda c: means[c])  # the first of equals: listed order
        evidence = {"metric": by, **means}
        reason = f"{too_short}: best candidate on {len(older)} fold{'s' * (len(older) != 1)}"
    else:
        model = default_model(n, m)
        where = "any older fold" if folds else "any fold"
        reason = f"{too_short} and for {where}: {model} by default"
    return ShortChoice(sid, n, model, reason, folds, evidence, by_fold.get(0, {}))


def choose_all(
    values: dict[str, np.ndarray], cfg: Config, forecast: Forecast = forecast_batch
) -> list[ShortChoice]:
    """Backtest every short series (id -> values in time order) on the folds it has and choose
    its candidate (module docstring)."""
    candidates = short_candidates(cfg)
    names = tuple(dict.fromkeys((*candidates, *DEFAULT_ORDER)))  # the defaults' fold 0 too
    values = {sid: np.asarray(v, dtype=np.float64) for sid, v in values.items()}
    scores = fold_scores(values, cfg, names, forecast)
    chosen = [choose(sid, v.size, scores[sid], cfg) for sid, v in values.items()]
    # As for the LSTM series: a series' own best gives way to the short series' anchor (their
    # best candidate, or best combination: evaluate.shrink_toward) unless it beats that by
    # evaluate.choice_margin (tasks/evaluation/shrinkage.py).
    evidence = [c.evidence for c in chosen]
    best = shrinkage.anchor(evidence, candidates, cfg.evaluate.shrink_toward)
    margin = cfg.evaluate.choice_margin
    yields = shrinkage.shrink([c.model for c in chosen], evidence, best, margin)
    for c, gives_way in zip(chosen, yields, strict=True):
        if gives_way:
            c.model = best
            c.evidence = {**c.evidence, "overall_best": best}
            c.reason = c.reason.replace("best candidate", "overall best candidate")
    # A series with no older fold has no evidence of its own, so nothing of its own beats the
    # anchor by the margin either: with shrinkage on, it gives way to the anchor too, where its
    # history fits it (the fixed rule otherwise).
    if best is not None and margin > 0:
        m = cfg.data.season_length
        for c in chosen:
            if not c.evidence and c.steps >= needs(best, m):
                c.model = best
                c.evidence = {"overall_best": best}
                c.reason = (
                    c.reason.rsplit(": ", 1)[0]
                    + f": {best}, the short series' overall best (evaluate.choice_margin > 0)"
                )
    return chosen


def choose_short(sid: str, values: np.ndarray, cfg: Config) -> ShortChoice:
    """`choose_all` of one series."""
    return choose_all({sid: values}, cfg)[0]


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def short_series(frame: pl.DataFrame, known: Iterable) -> dict[str, pl.DataFrame]:
    """Series id -> (timestamp, value) rows in time order of every series of the validated
    `frame` not in `known` (the prepared, LSTM series; ids of any string type)."""
    known = [str(sid) for sid in known]
    rest = frame.filter(~pl.col(SERIES_ID).is_in(known)).select(SERIES_ID, TIMESTAMP, VALUE)
    rest = rest.sort(SERIES_ID, TIMESTAMP)
    return {
        str(sid[0]): part.drop(SERIES_ID)
        for sid, part in rest.group_by(SERIES_ID, maintain_order=True)
    }


def values_of(series: dict[str, pl.DataFrame]) -> dict[str, np.ndarray]:
    """Series id -> its values in time order, from `short_series`."""
    return {sid: part[VALUE].to_numpy().astype(np.float64) for sid, part in series.items()}


def summary(choices: list[ShortChoice]) -> dict:
    """The short series in metrics/evaluate.json: how many, published by which candidate and
    why, and their chosen candidates' mean scores on fold 0 (where they have it) beside
    seasonal naive's on the same series, so that they are counted, not hidden."""
    kinds = Counter(_kind(c) for c in choices)
    scored = [c for c in choices if c.model in c.fold0]
    same = [c for c in scored if "seasonal_naive" in c.fold0]
    return {
        "series": len(choices),
        "published_by": dict(sorted(Counter(c.model for c in choices).items())),
        "reasons": dict(sorted(kinds.items())),
        "scored_on_fold_0": len(scored),
        "published": mean_scores([c.fold0[c.model] for c in scored]) if scored else None,
        "published_where_seasonal_naive": (
            mean_scores([c.fold0[c.model] for c in same]) if same else None
        ),
        "seasonal_naive": (
            mean_scores([c.fold0["seasonal_naive"] for c in same]) if same else None
        ),
        "series_ids": [c.series_id for c in choices[:20]],
    }


def every_series(
    lstm_rows: list[dict], reference_rows: list[dict], short: list[ShortChoice]
) -> dict:
    """What the gate judges (metrics/evaluate.json "every_series"): the published mixture on the
    latest fold over every series scored there, the LSTM series (`lstm_rows`, seasonal naive's
    `reference_rows`) and the short series that have fold 0 with both their model and seasonal
    naive scored; the same series' seasonal naive, and the per-series comparison."""
    scored = [c for c in short if c.model in c.fold0 and REFERENCE in c.fold0]
    rows = [*lstm_rows, *(c.fold0[c.model] for c in scored)]
    refs = [*reference_rows, *(c.fold0[REFERENCE] for c in scored)]
    return {
        "series": len(rows),
        "lstm_series": len(lstm_rows),
        "short_series": len(scored),
        "published": mean_scores(rows) if rows else None,
        REFERENCE: mean_scores(refs) if refs else None,
        "vs_seasonal_naive": series_vs_reference(rows, refs),
    }


def _kind(choice: ShortChoice) -> str:
    older = [k for k in choice.folds if k > 0]
    if older and choice.evidence:
        return "chosen_on_older_folds"
    if "overall_best" in choice.evidence:
        return "overall_best_no_older_fold"
    return "default_rule_fold_0_only" if choice.folds else "default_rule_no_fold"

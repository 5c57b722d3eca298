"""Reference forecasts the LSTM must beat: naive, seasonal naive and drift. Pure numpy.

`BASELINES` is the one list of them (name -> forecast function, in report order) and `MODELS`
the one list of what every run scores: the backtest, evaluate's plots, the gate, the UI artifacts
and the benchmarks all read these, so a new baseline is one function and one entry here.
`FORECASTERS` adds the statistical candidates (tasks/evaluation/statistical.py), scored only in runs
whose `evaluate.candidates` list them; `ALL_MODELS` is every name a run may report, in report order.
`forecast_all` forecasts many series with several of them at once: the baselines series by series
(numpy, microseconds), the statistical ones batched through statsforecast (seconds per series).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tasks.evaluation.combinations import (
    COMBINATIONS,
    STATISTICAL_COMBINATIONS,
    combine,
    parts_to_score,
)
from tasks.evaluation.statistical import STATISTICAL, forecast_many

# (history, horizon, season_length) -> (horizon,) forecast
Baseline = Callable[[ArrayLike, int, int], NDArray[np.float64]]


def _history(history: ArrayLike, horizon: int) -> NDArray[np.float64]:
    h = np.asarray(history, dtype=np.float64)
    if h.ndim != 1:
        raise ValueError(f"history must be 1-D, got shape {h.shape}")
    if h.size == 0:
        raise ValueError("history is empty: nothing to forecast from")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return h


def naive(history: ArrayLike, horizon: int) -> NDArray[np.float64]:
    """Repeat the last observed value `horizon` times."""
    h = _history(history, horizon)
    return np.full(horizon, h[-1])


def seasonal_naive(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """Repeat the last full season, tiled when the horizon is longer than one season."""
    h = _history(history, horizon)
    if season_length < 1:
        raise ValueError(f"season_length must be >= 1, got {season_length}")
    if h.size < season_length:
        raise ValueError(
            f"history has {h.size} values, shorter than one season (season_length="
            f"{season_length}): seasonal naive needs at least a full season"
        )
    last_season = h[-season_length:]
    reps = -(-horizon // season_length)  # ceil division
    return np.tile(last_season, reps)[:horizon]


def drift(history: ArrayLike, horizon: int) -> NDArray[np.float64]:
    """Extend the line from the first to the last value: last + k * mean step, k = 1..horizon."""
    h = _history(history, horizon)
    # One value has no slope: drift then degrades to naive.
    slope = (h[-1] - h[0]) / (h.size - 1) if h.size > 1 else 0.0
    return h[-1] + slope * np.arange(1, horizon + 1, dtype=np.float64)


BASELINES: dict[str, Baseline] = {
    "naive": lambda history, horizon, season_length: naive(history, horizon),
    "seasonal_naive": seasonal_naive,
    "drift": lambda history, horizon, season_length: drift(history, horizon),
}
# Every forecaster the backtest scores: the network first, then the baselines.
MODELS = ("lstm", *BASELINES)
# Every non-network forecaster by name: what a series may be published by besides the LSTM.
FORECASTERS: dict[str, Baseline] = {**BASELINES, **STATISTICAL}
# Plus the combinations without the network (tasks/evaluation/combinations.py), from a history.
FORECASTERS.update(
    {
        name: lambda history, horizon, season_length, name=name, parts=parts: combine(
            name, {p: FORECASTERS[p](history, horizon, season_length) for p in parts}
        )
        for name, parts in STATISTICAL_COMBINATIONS.items()
    }
)
ALL_MODELS = ("lstm", *BASELINES, *STATISTICAL, *COMBINATIONS)


def scored_models(candidates: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """What a run scores: the LSTM, every baseline (the gate's references), and the statistical
    candidates it lists (`evaluate.candidates`), in report order."""
    needed = parts_to_score(candidates)
    return (
        *MODELS,
        *(name for name in STATISTICAL if name in needed),
        *(name for name in COMBINATIONS if name in candidates),
    )


def forecast_all(
    names: Sequence[str],
    histories: Sequence[ArrayLike],
    horizon: int,
    season_length: int,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """name -> (S, horizon): each forecaster in `names` on every history, equal to
    `FORECASTERS[name](history, horizon, season_length)` per series. The statistical ones are
    fitted together in batched statsforecast calls (`statistical.forecast_many`), which report
    `on_progress(series done)`."""
    unknown = [name for name in names if name not in FORECASTERS]
    if unknown:
        raise ValueError(f"not a forecaster: {unknown}; known: {list(FORECASTERS)}")
    out = {  # a combination's baseline parts (drift) too
        name: np.stack([BASELINES[name](h, horizon, season_length) for h in histories])
        if histories
        else np.empty((0, horizon))
        for name in parts_to_score(names)
        if name in BASELINES
    }
    combos = [name for name in names if name in STATISTICAL_COMBINATIONS]
    statistical = [name for name in parts_to_score(names) if name in STATISTICAL]
    if statistical and histories:
        out.update(
            forecast_many(statistical, histories, horizon, season_length, on_progress=on_progress)
        )
    elif statistical:
        out.update({name: np.empty((0, horizon)) for name in statistical})
    out.update({name: combine(name, out) for name in combos})
    return {name: out[name] for name in names}

"""Reference forecasts the LSTM must beat: naive, seasonal naive and drift. Pure numpy.

`BASELINES` is the one list of them (name -> forecast function, in report order) and `MODELS`
the one list of everything scored: the backtest, evaluate's plots, the gate, the UI artifacts
and the benchmarks all read these, so a new baseline is one function and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

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

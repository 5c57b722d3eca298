"""Statistical per-series candidates: statsforecast's AutoETS and AutoTheta, fitted on one
series' history at a time, with the baselines' signature (history, horizon, season_length).

They are candidates of the per-series choice (tasks/evaluation/selection.py) beside the naive
baselines, listed in `evaluate.candidates`: scored on every backtest fold like a baseline, chosen
for a series only where they beat the LSTM and every other candidate on the older folds, published
with conformal intervals by the same method. Why: the LSTM-or-baseline mixture was 14.5 % worse
than AutoETS on 30 M3 monthly series (benchmarks/results/accuracy_m3.json); exponential
smoothing and Theta are the classic strong per-series models there.

statsforecast (numba; about 5 s to import) is imported on first use, so a run whose candidates
list none of these never pays for it. A fit that raises or forecasts a non-finite value (a
series too short or too odd for the model) forecasts the last value instead, exactly what the
`naive` candidate forecasts: such a series is then judged as naive and never chosen over it
(naive comes first, and a tie goes to the earlier candidate).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _fit(model_name: str, history: ArrayLike, horizon: int, season_length: int) -> np.ndarray:
    from statsforecast import models

    y = np.asarray(history, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"history must be a non-empty 1-D array, got shape {y.shape}")
    # A seasonal model needs two full seasons to estimate its seasonal states; below that the
    # non-seasonal model (season_length 1) is what can be fitted.
    m = season_length if y.size >= 2 * season_length else 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = getattr(models, model_name)(season_length=m).forecast(y=y, h=horizon)["mean"]
        pred = np.asarray(pred, dtype=np.float64)
    except Exception:  # noqa: BLE001 - any failure of the fit: judged as naive (docstring)
        pred = np.full(horizon, np.nan)
    if pred.shape != (horizon,) or not np.all(np.isfinite(pred)):
        return np.full(horizon, y[-1])
    return pred


def ets(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """AutoETS: the exponential-smoothing state-space model (error, trend, season each none,
    additive or multiplicative; damped trend allowed) with the lowest AICc on the history."""
    return _fit("AutoETS", history, horizon, season_length)


def theta(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """AutoTheta: the best of the standard, optimised and dynamic Theta models on the history
    (classical multiplicative seasonal decomposition when the series tests seasonal)."""
    return _fit("AutoTheta", history, horizon, season_length)


STATISTICAL = {"ets": ets, "theta": theta}

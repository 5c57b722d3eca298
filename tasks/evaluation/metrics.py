"""Forecast accuracy metrics on 1-D arrays: pure numpy, one float per call.

Every metric checks its inputs first: a shape mismatch or a NaN/inf forecast raises ValueError
instead of quietly producing a NaN score that would then slip through the evaluation gate.
`METRICS` (below) is the one list of them that the backtest, the gate, the UI artifacts and the
benchmarks read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

# (y_true, y_pred, scale) -> score; scale: the in-sample seasonal-naive MAE (MASE's denominator)
Metric = Callable[[ArrayLike, ArrayLike, float], float]


def _as_1d(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _count_non_finite(arr: NDArray[np.float64]) -> str:
    return f"{int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} inf"


def _check(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.float64], ...]:
    """Validate a (truth, forecast) pair and return both as float64 1-D arrays."""
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {t.shape} vs {p.shape}")
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty: nothing to score")
    if not np.isfinite(p).all():
        raise ValueError(
            f"y_pred holds non-finite forecasts ({_count_non_finite(p)} of {p.size} values)"
        )
    if not np.isfinite(t).all():
        raise ValueError(
            f"y_true holds non-finite values ({_count_non_finite(t)} of {t.size} values)"
        )
    return t, p


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _check(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _check(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def smape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Symmetric MAPE in percent (0..200): 200 * mean(|y - ŷ| / (|y| + |ŷ|)); 0/0 terms count 0."""
    t, p = _check(y_true, y_pred)
    num = np.abs(t - p)
    den = np.abs(t) + np.abs(p)
    # den == 0 only when y == ŷ == 0: a perfect forecast, so the term is 0, not NaN.
    ratio = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(200.0 * np.mean(ratio))


def seasonal_naive_scale(insample: ArrayLike, season_length: int) -> float:
    """In-sample MAE of the seasonal-naive forecast: mean |x[t] - x[t-m]|, the MASE denominator."""
    x = _as_1d(insample, "insample")
    if season_length < 1:
        raise ValueError(f"season_length must be >= 1, got {season_length}")
    if x.size <= season_length:
        raise ValueError(
            f"insample has {x.size} values; MASE needs more than season_length={season_length}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"insample holds non-finite values ({_count_non_finite(x)})")
    return float(np.mean(np.abs(x[season_length:] - x[:-season_length])))


def _nonzero_scale(insample: ArrayLike, season_length: int) -> float:
    scale = seasonal_naive_scale(insample, season_length)
    if scale == 0.0:
        raise ValueError(
            "MASE is undefined: the series is constant over its training part "
            f"(every value equals the one season_length={season_length} steps earlier), "
            "so the seasonal-naive scale is 0"
        )
    return scale


def mase(y_true: ArrayLike, y_pred: ArrayLike, insample: ArrayLike, season_length: int) -> float:
    """MAE scaled by the in-sample seasonal-naive MAE: < 1 beats seasonal naive in-sample."""
    return scaled_mae(y_true, y_pred, _nonzero_scale(insample, season_length))


def scaled_mae(y_true: ArrayLike, y_pred: ArrayLike, scale: float) -> float:
    """MAE / scale: MASE when scale = seasonal_naive_scale(insample, season_length) > 0."""
    return mae(y_true, y_pred) / scale


# Every metric, in report order.
METRICS: dict[str, Metric] = {
    "rmse": lambda y_true, y_pred, scale: rmse(y_true, y_pred),
    "mae": lambda y_true, y_pred, scale: mae(y_true, y_pred),
    "smape": lambda y_true, y_pred, scale: smape(y_true, y_pred),
    "mase": scaled_mae,
}
# The metrics divided by the scale: undefined for a series whose scale is 0 (constant).
SCALED = frozenset({"mase"})


def score(
    y_true: ArrayLike, y_pred: ArrayLike, insample: ArrayLike, season_length: int
) -> dict[str, float]:
    """Every metric for one series: {"rmse", "mae", "smape", "mase"}."""
    _check(y_true, y_pred)
    scale = _nonzero_scale(insample, season_length)
    return {name: metric(y_true, y_pred, scale) for name, metric in METRICS.items()}

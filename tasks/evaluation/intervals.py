"""Conformal prediction intervals from backtest residuals, one width per horizon step.

Space: the residuals are taken in the model's own space, the per-series scaled values (after the
log when `prepare.transform: log`), where series of different levels are comparable and errors
are close to symmetric. An interval is forecast ± width there, mapped back to original units
through the series' inverse transform (monotone), so in original units it is asymmetric
(multiplicative under log).

Method (split conformal, per horizon step h): the absolute residuals |actual - forecast| at step
h of every backtest fold and every series are pooled; the width at level L is their
ceil((n + 1) L / 100)-th smallest value, the finite-sample conformal quantile, which covers a new
exchangeable residual with probability >= L %. That rank exists only when n >= L / (100 - L)
(4 residuals for 80 %, 19 for 95 %). With few folds and series there are fewer per step, so the
pool is widened to a window of w neighbouring horizon steps (the smallest w that gives enough
residuals, centred on h where possible): errors of neighbouring steps are alike, and w is
recorded. If even all steps together are too few, the width is the largest residual seen
(`exact: false`, coverage below L is then possible) - said so in models/intervals.json.
Residuals of overlapping folds are correlated (step < horizon), so exchangeability, and the
guarantee, hold only approximately: the reported backtest coverage is the check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tasks.features.prepare import Prepared
from tasks.model.forecast import to_original

# Widths calibrated by evaluate on the backtest, applied by publish to the future forecasts.


# ---------------------------------------------------------------- conformal quantile
def min_residuals(level: float) -> int:
    """Fewest residuals for which the finite-sample conformal rank ceil((n+1) L) is <= n."""
    n = 1
    while math.ceil((n + 1) * level / 100 - 1e-12) > n:
        n += 1
    return n


def conformal_quantile(abs_residuals: np.ndarray, level: float) -> tuple[float, bool]:
    """The ceil((n+1) L/100)-th smallest |residual|; (largest, False) when n is too small."""
    r = np.sort(np.asarray(abs_residuals, dtype=np.float64).ravel())
    if r.size == 0:
        raise ValueError("no residuals to calibrate an interval on")
    rank = math.ceil((r.size + 1) * level / 100 - 1e-12)
    if rank <= r.size:
        return float(r[rank - 1]), True
    return float(r[-1]), False


def _window(h: int, w: int, horizon: int) -> slice:
    start = min(max(h - (w - 1) // 2, 0), horizon - w)
    return slice(start, start + w)


@dataclass
class Calibration:
    """Interval half-widths in the scaled space: widths[level][h] for horizon step h + 1."""

    levels: tuple[int, ...]
    widths: dict[int, np.ndarray]  # level -> (horizon,)
    pooled_steps: dict[int, int]  # level -> w, the horizon steps pooled per width
    residuals_per_step: int  # folds * series
    exact: dict[int, bool]  # level -> False when even every step pooled was too few

    def to_json(self) -> dict:
        return {
            "space": "scaled",
            "method": "split conformal, finite-sample quantile per horizon step, "
            "neighbouring steps pooled when too few residuals",
            "levels": list(self.levels),
            "widths": {str(lv): [float(v) for v in self.widths[lv]] for lv in self.levels},
            "pooled_steps": {str(lv): self.pooled_steps[lv] for lv in self.levels},
            "residuals_per_step": self.residuals_per_step,
            "exact": {str(lv): self.exact[lv] for lv in self.levels},
        }

    @classmethod
    def from_json(cls, raw: dict) -> Calibration:
        levels = tuple(int(lv) for lv in raw["levels"])
        return cls(
            levels=levels,
            widths={lv: np.asarray(raw["widths"][str(lv)], dtype=np.float64) for lv in levels},
            pooled_steps={lv: int(raw["pooled_steps"][str(lv)]) for lv in levels},
            residuals_per_step=int(raw["residuals_per_step"]),
            exact={lv: bool(raw["exact"][str(lv)]) for lv in levels},
        )


def calibrate(residuals: np.ndarray, levels) -> Calibration:
    """Widths per level and horizon step from scaled residuals of shape (n, horizon)."""
    res = np.abs(np.asarray(residuals, dtype=np.float64))
    if res.ndim != 2 or res.shape[0] == 0:
        raise ValueError(f"residuals must be (n >= 1, horizon), got shape {res.shape}")
    if not np.isfinite(res).all():
        raise ValueError("residuals hold non-finite values")
    n, horizon = res.shape
    widths, pooled, exact = {}, {}, {}
    for level in levels:
        w = min(horizon, math.ceil(min_residuals(level) / n))
        out = np.empty(horizon)
        ok = True
        for h in range(horizon):
            out[h], good = conformal_quantile(res[:, _window(h, w, horizon)], level)
            ok &= good
        widths[level], pooled[level], exact[level] = out, w, ok
    return Calibration(tuple(levels), widths, pooled, n, exact)


def bands(
    prepared: Prepared, s: int, scaled: np.ndarray, cal: Calibration
) -> dict[str, np.ndarray]:
    """{"lo_80": ..., "hi_80": ..., ...} in original units around scaled forecasts of series s."""
    out = {}
    for level in cal.levels:
        width = cal.widths[level][: scaled.shape[-1]]
        out[f"lo_{level}"] = to_original(prepared, s, scaled - width)
        out[f"hi_{level}"] = to_original(prepared, s, scaled + width)
    return out


# ---------------------------------------------------------------- backtest coverage
def coverage(residuals: np.ndarray, levels) -> dict:
    """Empirical coverage of the intervals on the backtest, from residuals (folds, series, h).

    With two folds or more: leave one fold out (widths calibrated on the other folds, coverage
    counted on the held-out one), which is what a new period would see. With one fold this is
    impossible and the in-sample coverage is reported instead (optimistic by construction).
    Returns {"method", "overall": {level: c}, "per_fold": [{level: c}, ...], "in_sample": ...}.
    """
    res = np.abs(np.asarray(residuals, dtype=np.float64))
    folds, _, horizon = res.shape
    flat = res.reshape(-1, horizon)
    full = calibrate(flat, levels)
    in_sample = {lv: float(np.mean(flat <= full.widths[lv])) for lv in levels}
    if folds < 2:
        return {
            "method": "in-sample (one fold: nothing to hold out)",
            "overall": in_sample,
            "per_fold": [in_sample],
            "in_sample": in_sample,
        }
    per_fold, hits = [], {lv: [] for lv in levels}
    for k in range(folds):
        rest = np.delete(res, k, axis=0).reshape(-1, horizon)
        cal = calibrate(rest, levels)
        row = {}
        for lv in levels:
            inside = res[k] <= cal.widths[lv]
            hits[lv].append(inside.ravel())
            row[lv] = float(np.mean(inside))
        per_fold.append(row)
    overall = {lv: float(np.mean(np.concatenate(hits[lv]))) for lv in levels}
    return {
        "method": "leave-one-fold-out",
        "overall": overall,
        "per_fold": per_fold,
        "in_sample": in_sample,
    }


def lofo_calibrations(residuals: np.ndarray, levels) -> list[Calibration]:
    """Per fold k: the calibration from every other fold (the full one when there is one fold),
    used to draw honest bands on the backtest plot."""
    res = np.asarray(residuals, dtype=np.float64)
    folds, _, horizon = res.shape
    if folds < 2:
        return [calibrate(res.reshape(-1, horizon), levels)]
    return [calibrate(np.delete(res, k, axis=0).reshape(-1, horizon), levels) for k in range(folds)]

"""Per-series value transform (log, asinh or none), then a scikit-learn scaler fitted on the
training part of each series only (the test tail never influences the scaling).

`prepare.transform: auto` (the default) picks per series: the log where every value of the series
is positive, else `asinh(y / c)` with c the smallest nonzero |y| of the training part. Why asinh
for the others (docs/decisions.md, "Zeros"):
- it takes every real value: zeros (intermittent demand, a closed shop), negatives where
  data.min_value allows them, and a baseline's forecast below zero (drift on a falling series,
  tasks/evaluation/selection.py scales it for the intervals), where log1p fails below -1;
- far above c it is log(2y / c): the same level-free, multiplicative shape the log gives
  positive series, so the seasonal residual (the change over the last season) and the relative
  inputs mean the same for both kinds; near zero it is linear (y / c), so a zero is an ordinary
  value, not -inf;
- dividing by c makes it free of the unit: the same series in thousands is transformed the same
  (asinh(y) alone would be log-like in one unit and linear in another). c is fitted on the
  training part, like the scaler.
The choice reads every value handed to `fit` as `domain` (the whole series prepare sees): it is
a property of the data's domain, like the schema's value bounds, not a fitted parameter; a log
series with a zero in its test tail could not be scored. Forecasts of an asinh series whose
values are all >= 0 are clipped at 0 (the data's own bound; the log's are positive anyway).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from tasks import safe_state

SCALERS: dict[str, type[TransformerMixin]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
}
KINDS = ("none", "log", "asinh")  # what one series gets
TRANSFORMS = (*KINDS, "auto")  # what prepare.transform may say


def choose_kind(domain: np.ndarray) -> str:
    """`auto` for one series: log where every value is positive, else asinh."""
    values = np.asarray(domain, dtype=np.float64)
    return "log" if values.size and bool(np.all(values > 0)) else "asinh"


def asinh_scale(train_values: np.ndarray) -> float:
    """c of asinh(y / c): the smallest nonzero |y| of the training part (1.0 when all are 0)."""
    size = np.abs(np.asarray(train_values, dtype=np.float64))
    nonzero = size[size > 0]
    return float(nonzero.min()) if nonzero.size else 1.0


class SeriesTransform:
    """y -> scaler(f(y)) per series, and back; f is the log, asinh(y / c) or the identity."""

    def __init__(self, transform: str = "log", scaler: str = "standard"):
        if transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {transform!r}; one of {list(TRANSFORMS)}")
        if scaler not in SCALERS:
            raise ValueError(f"unknown scaler {scaler!r}; one of {sorted(SCALERS)}")
        self.transform_name = transform  # as configured ("auto": see kinds)
        self.scaler_name = scaler
        self.scalers: dict[str, TransformerMixin] = {}
        self.kinds: dict[str, str] = {}  # per series: log | asinh | none
        self.asinh_scales: dict[str, float] = {}  # per asinh series: c
        self.nonnegative: dict[str, bool] = {}  # per series: every value it was fitted on >= 0

    def kind(self, series_id: str) -> str:
        """The transform series `series_id` gets (its own under auto)."""
        return self.kinds.get(series_id, self.transform_name)

    def _forward(self, series_id: str, y: np.ndarray) -> np.ndarray:
        kind = self.kind(series_id)
        if kind == "log":
            return np.log(y)
        if kind == "asinh":
            return np.arcsinh(y / self.asinh_scales.get(series_id, 1.0))
        return y

    def _backward(self, series_id: str, z: np.ndarray) -> np.ndarray:
        kind = self.kind(series_id)
        if kind == "log":
            return np.exp(z)
        if kind == "asinh":
            y = np.sinh(z) * self.asinh_scales.get(series_id, 1.0)
            return np.maximum(y, 0.0) if self.nonnegative.get(series_id, False) else y
        return z

    def fit(
        self, series_id: str, train_values: np.ndarray, domain: np.ndarray | None = None
    ) -> SeriesTransform:
        """Fit series `series_id`'s transform and scaler on its training part. `domain`: every
        value the transform will be applied to (default: the training part), which `auto`
        chooses by."""
        train = np.asarray(train_values, dtype=np.float64)
        seen = train if domain is None else np.asarray(domain, dtype=np.float64)
        kind = choose_kind(seen) if self.transform_name == "auto" else self.transform_name
        self.kinds[series_id] = kind
        if kind == "asinh":
            self.asinh_scales[series_id] = asinh_scale(train)
            self.nonnegative[series_id] = bool(np.all(seen >= 0))
        scaler = SCALERS[self.scaler_name]()
        scaler.fit(self._forward(series_id, train).reshape(-1, 1))
        self.scalers[series_id] = scaler
        return self

    def transform(self, series_id: str, y: np.ndarray) -> np.ndarray:
        z = self._forward(series_id, np.asarray(y, dtype=np.float64))
        return _scale(self.scalers[series_id], z)

    def inverse(self, series_id: str, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return self._backward(series_id, _unscale(self.scalers[series_id], z))

    def counts(self) -> dict[str, int]:
        """How many series got each transform (prepare's summary)."""
        kinds = list(self.kinds.values())
        return {k: kinds.count(k) for k in KINDS if k in kinds}

    def save(self, path: str | Path) -> None:
        """The fitted parameters only (no pickle: loading a file must not run code)."""
        safe_state.save(
            path,
            {
                "transform": self.transform_name,
                "scaler": self.scaler_name,
                "series": {sid: _fitted(s) for sid, s in self.scalers.items()},
                "kinds": dict(self.kinds),
                "asinh_scales": dict(self.asinh_scales),
                "nonnegative": dict(self.nonnegative),
            },
        )

    @staticmethod
    def load(path: str | Path) -> SeriesTransform:
        state = safe_state.load(path)
        obj = SeriesTransform(state["transform"], state["scaler"])
        for sid, fitted in state["series"].items():
            scaler = SCALERS[obj.scaler_name]()
            for attr, value in fitted.items():
                setattr(scaler, attr, value)
            obj.scalers[sid] = scaler
        # A file from before per-series kinds: every series has the configured transform.
        obj.kinds = {sid: str(k) for sid, k in state.get("kinds", {}).items()}
        obj.asinh_scales = {sid: float(c) for sid, c in state.get("asinh_scales", {}).items()}
        obj.nonnegative = {sid: bool(v) for sid, v in state.get("nonnegative", {}).items()}
        return obj


def _fitted(scaler: TransformerMixin) -> dict:
    """A fitted scikit-learn scaler's learnt attributes (`mean_`, `scale_`, ...)."""
    return {k: v for k, v in vars(scaler).items() if k.endswith("_") and not k.startswith("_")}


# The fitted scalers' own arithmetic on their learnt attributes, as scikit-learn's transform and
# inverse_transform do it (same operations, same order: equal to the last bit), without their
# input validation: that cost about 1 ms per call, and evaluate calls it per series, candidate
# and fold (measured: 83 of 190 s of an evaluate of 666 M3 quarterly series).
def _scale(scaler: TransformerMixin, z: np.ndarray) -> np.ndarray:
    if isinstance(scaler, StandardScaler):
        return (z - scaler.mean_[0]) / scaler.scale_[0]
    if isinstance(scaler, MinMaxScaler):
        return z * scaler.scale_[0] + scaler.min_[0]
    if isinstance(scaler, RobustScaler):
        return (z - scaler.center_[0]) / scaler.scale_[0]
    return scaler.transform(z.reshape(-1, 1)).reshape(z.shape)


def _unscale(scaler: TransformerMixin, z: np.ndarray) -> np.ndarray:
    if isinstance(scaler, StandardScaler):
        return z * scaler.scale_[0] + scaler.mean_[0]
    if isinstance(scaler, MinMaxScaler):
        return (z - scaler.min_[0]) / scaler.scale_[0]
    if isinstance(scaler, RobustScaler):
        return z * scaler.scale_[0] + scaler.center_[0]
    return scaler.inverse_transform(z.reshape(-1, 1)).reshape(z.shape)

"""Per-series value transform: optional log, then a scikit-learn scaler fitted on the training part
of each series only (the test tail never influences the scaling)."""

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


class SeriesTransform:
    """y -> scaler(log(y)) per series, and back."""

    def __init__(self, transform: str = "log", scaler: str = "standard"):
        if transform not in ("none", "log"):
            raise ValueError(f"unknown transform {transform!r}")
        if scaler not in SCALERS:
            raise ValueError(f"unknown scaler {scaler!r}; one of {sorted(SCALERS)}")
        self.transform_name = transform
        self.scaler_name = scaler
        self.scalers: dict[str, TransformerMixin] = {}

    def _forward(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.transform_name == "log" else y

    def _backward(self, z: np.ndarray) -> np.ndarray:
        return np.exp(z) if self.transform_name == "log" else z

    def fit(self, series_id: str, train_values: np.ndarray) -> SeriesTransform:
        scaler = SCALERS[self.scaler_name]()
        scaler.fit(self._forward(np.asarray(train_values, dtype=np.float64)).reshape(-1, 1))
        self.scalers[series_id] = scaler
        return self

    def transform(self, series_id: str, y: np.ndarray) -> np.ndarray:
        z = self._forward(np.asarray(y, dtype=np.float64))
        return self.scalers[series_id].transform(z.reshape(-1, 1)).reshape(z.shape)

    def inverse(self, series_id: str, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        y = self.scalers[series_id].inverse_transform(z.reshape(-1, 1)).reshape(z.shape)
        return self._backward(y)

    def save(self, path: str | Path) -> None:
        """The fitted parameters only (no pickle: loading a file must not run code)."""
        safe_state.save(
            path,
            {
                "transform": self.transform_name,
                "scaler": self.scaler_name,
                "series": {sid: _fitted(s) for sid, s in self.scalers.items()},
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
        return obj


def _fitted(scaler: TransformerMixin) -> dict:
    """A fitted scikit-learn scaler's learnt attributes (`mean_`, `scale_`, ...)."""
    return {k: v for k, v in vars(scaler).items() if k.endswith("_") and not k.startswith("_")}

"""Per-series value transform: optional log, then a scikit-learn scaler fitted on the training part
of each series only (the test tail never influences the scaling)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

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
        with open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path: str | Path) -> SeriesTransform:
        with open(path, "rb") as fh:
            obj = pickle.load(fh)
        if not isinstance(obj, SeriesTransform):
            raise TypeError(f"{path} does not hold a SeriesTransform")
        return obj

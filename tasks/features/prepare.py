"""Prepare: time-ordered split, per-series scaling fitted on the training part, window index sets.

Each series is split by time: its last `forecast.horizon` steps are the test tail, everything
before is the training part. Within the training part, windows whose target ends in the last
`prepare.validation_steps` steps judge early stopping; the earlier ones train the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, auto
from tasks.features import covariates as cov
from tasks.features.covariates import Covariates
from tasks.features.scaling import SeriesTransform
from tasks.features.windows import WindowGeometry
from tasks.timefmt import iso


@dataclass
class Prepared:
    series_ids: np.ndarray  # (S,) str
    offsets: np.ndarray  # (S + 1,) int64: series s is [offsets[s], offsets[s + 1])
    train_end: np.ndarray  # (S,) int64: absolute end (exclusive) of each training part
    timestamps: np.ndarray  # (N,) datetime64[us]
    raw: np.ndarray  # (N,) float64, original units
    values: np.ndarray  # (N,) float32, transformed and scaled
    geometry: WindowGeometry
    validation_steps: int
    season_length: int
    transform: SeriesTransform
    # data.covariates, scaled and encoded on the training part (tasks/features/covariates.py); None:
    # none.
    covariates: Covariates | None = None

    # ------------------------------------------------------------------ window sets
    @property
    def train_starts(self) -> np.ndarray:
        return self.geometry.starts_ending_by(
            self.offsets[:-1], self.offsets[:-1], self.train_end - self.validation_steps
        )

    @property
    def val_starts(self) -> np.ndarray:
        return self.geometry.starts_ending_by(
            self.offsets[:-1], self.train_end - self.validation_steps, self.train_end
        )

    @property
    def test_starts(self) -> np.ndarray:
        """One window per series: inputs end where the training part ends, targets = test tail."""
        return self.train_end - self.geometry.lookback

    @property
    def forecast_starts(self) -> np.ndarray:
        """One input window per series: its last `lookback` observations."""
        return self.offsets[1:] - self.geometry.lookback

    @property
    def lengths(self) -> np.ndarray:
        """(S,) steps of each whole series: what `auto` params are resolved from
        (tasks/config/auto.py), the same in every stage that loads these arrays."""
        return np.diff(self.offsets)

    def mase_weights(self, clip: float = 10.0, power: int = 2, balance: bool = False) -> np.ndarray:
        """(N,) float32 loss weights putting a squared error (an absolute one with `power` 1)
        on the scale MASE judges it by.

        Each point weighs 1 / d_s**power (2 by default) for its series s, d_s its training
        part's mean absolute seasonal difference (the MASE denominator) in the scaled space the
        network fits; a mean squared error across series then weighs each series like the
        squared error of a MASE does, instead of by its scaled variance (a smooth trending
        series, small d_s, counts for more). Kept within a factor `clip` of the median series'
        weight (a near-constant series would otherwise swamp the rest), then divided by their
        mean over the training windows, so one series gets weight 1 everywhere (the bundled run
        is unchanged). Power 0: no MASE scaling (every series 1 before `balance`).

        `balance`: each series' weight is also divided by its number of training windows, so
        every series counts as much in the loss whatever its length (the longest series would
        otherwise carry the fit: a window is a sample)."""
        n = len(self.series_ids)
        scale = np.full(n, np.nan)
        for s in range(n):
            part = self.values[self.offsets[s] : self.train_end[s]].astype(np.float64)
            m = self.season_length if part.size > self.season_length else 1
            if part.size > m:
                scale[s] = np.mean(np.abs(part[m:] - part[:-m]))
        per_series = np.where(scale > 0, 1.0 / scale**power, np.nan)
        mid = np.nanmedian(per_series) if np.isfinite(per_series).any() else 1.0
        per_series = np.clip(np.nan_to_num(per_series, nan=mid), mid / clip, mid * clip)
        starts = self.train_starts
        if balance:
            owner = np.searchsorted(self.offsets, starts, side="right") - 1
            count = np.bincount(owner, minlength=n).astype(np.float64)
            per_series = per_series / np.maximum(count, 1.0)
        weights = np.repeat(per_series, np.diff(self.offsets))
        mean = weights[starts].mean() if starts.size else 1.0
        return (weights / mean).astype(np.float32)

    def series(self, s: int) -> slice:
        return slice(int(self.offsets[s]), int(self.offsets[s + 1]))

    def to_original(self, s: int, scaled: np.ndarray) -> np.ndarray:
        return self.transform.inverse(str(self.series_ids[s]), scaled)

    # ------------------------------------------------------------------ persistence
    def save_arrays(self, path: str | Path) -> None:
        np.savez(
            path,
            series_ids=self.series_ids.astype(str),
            offsets=self.offsets,
            train_end=self.train_end,
            timestamps=self.timestamps,
            raw=self.raw,
            values=self.values,
            geometry=np.array([self.geometry.lookback, self.geometry.horizon]),
            validation_steps=np.array(self.validation_steps),
            season_length=np.array(self.season_length),
            **(self.covariates.arrays() if self.covariates is not None else {}),
        )

    @classmethod
    def load(cls, arrays: str | Path, scaler: str | Path) -> Prepared:
        with np.load(arrays, allow_pickle=False) as z:
            lookback, horizon = (int(v) for v in z["geometry"])
            return cls(
                series_ids=z["series_ids"],
                offsets=z["offsets"],
                train_end=z["train_end"],
                timestamps=z["timestamps"],
                raw=z["raw"],
                values=z["values"],
                geometry=WindowGeometry(lookback, horizon),
                validation_steps=int(z["validation_steps"]),
                season_length=int(z["season_length"]),
                transform=SeriesTransform.load(scaler),
                covariates=Covariates.from_arrays(z, z["offsets"], z["train_end"]),
            )

    def summary(self) -> dict:
        c = self.covariates
        extra = {} if c is None else {"covariates": c.used(), "static_features": c.n_static}
        return extra | {
            "series": len(self.series_ids),
            "points": int(self.values.size),
            "train_windows": int(self.train_starts.size),
            "val_windows": int(self.val_starts.size),
            "lookback": self.geometry.lookback,
            "horizon": self.geometry.horizon,
            "validation_steps": self.validation_steps,
            "transforms": self.transform.counts(),
        }


def saved_lengths(arrays: str | Path) -> np.ndarray:
    """(S,) series lengths of saved prepared arrays, without loading the rest (the train stage
    resolves `auto` params with them before anything else starts)."""
    with np.load(arrays, allow_pickle=False) as z:
        return np.diff(z["offsets"])


def _key_order(frame: pl.DataFrame) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(timestamps, offsets, series ids) when `frame` is in (series_id, timestamp) order, else
    (None, ...). Checked on runs and a diff, without the copy of the frame a sort would make."""
    runs = frame[SERIES_ID].rle().struct.unnest()  # one row per run of equal series_id
    lengths = runs["len"].to_numpy().astype(np.int64)
    offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)])
    series_ids = runs["value"].to_numpy().astype(str)
    timestamps = np.asarray(frame[TIMESTAMP].to_numpy(), dtype="datetime64[us]")
    rising = np.diff(timestamps.view(np.int64)) > 0
    rising[offsets[1:-1] - 1] = True  # a series boundary may step back in time
    in_order = bool(rising.all()) and bool((series_ids[1:] > series_ids[:-1]).all())
    return (timestamps if in_order else None), offsets, series_ids


def prepare(frame: pl.DataFrame, cfg: Config, future: pl.DataFrame | None = None) -> Prepared:
    """Validated long frame -> contiguous scaled series, split by time, with fitted scalers.
    `future`: the validated future covariates of the horizon after each series (ingest's
    data/validated/future.parquet); None: unknown (a backtest fold's cut). `auto` params are
    resolved from this frame's series lengths unless `cfg` is resolved already (a backtest fold
    is prepared with the config resolved on the whole series: tasks/evaluation/backtest.py)."""
    timestamps, offsets, series_ids = _key_order(frame)
    if timestamps is None:  # ingest returns key order; sort (a copy) only a frame that isn't
        frame = frame.sort(SERIES_ID, TIMESTAMP)
        timestamps, offsets, series_ids = _key_order(frame)
    cfg = auto.resolve(cfg, np.diff(offsets))
    horizon = cfg.forecast.horizon
    train_end = offsets[1:] - horizon
    if np.any(train_end - offsets[:-1] < cfg.lstm_history - horizon):
        raise ValueError("a series is shorter than cfg.lstm_history; lstm_series keeps it out")

    raw = np.asarray(frame[VALUE].to_numpy(), dtype=np.float64)
    transform = SeriesTransform(cfg.prepare.transform, cfg.prepare.scaler)
    values = np.empty(raw.size, dtype=np.float32)
    # One loop over series (not samples): each gets its own scaler, fitted before its test tail.
    for s, sid in enumerate(series_ids):
        lo, hi, end = int(offsets[s]), int(offsets[s + 1]), int(train_end[s])
        # The whole series is the transform's domain (auto: log only where all of it is > 0).
        transform.fit(sid, raw[lo:end], domain=raw[lo:hi])
        values[lo:hi] = transform.transform(sid, raw[lo:hi])

    return Prepared(
        series_ids=series_ids,
        offsets=offsets,
        train_end=train_end.astype(np.int64),
        timestamps=timestamps,
        raw=raw,
        values=values,
        geometry=WindowGeometry(cfg.prepare.lookback, horizon),
        validation_steps=cfg.prepare.validation_steps,
        season_length=cfg.data.season_length,
        transform=transform,
        covariates=cov.from_frame(frame, future, cfg, series_ids, offsets, train_end),
    )


def lstm_series(frame: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """The rows of the series long enough for the LSTM (Config.lstm_history): what prepare
    splits, scales and the LSTM trains on. The shorter ones stay in the validated data, forecast
    by the candidates their history fits (tasks/evaluation/short.py).

    `auto` params are resolved from the kept series' lengths (what every later stage resolves
    from: the prepared arrays), and which series are kept depends on them: dropping the shortest
    series can only raise the median length, so the auto lookback and the need only grow; repeat
    until the kept set is stable (a step or two)."""
    lengths = frame.group_by(SERIES_ID).len()
    while lengths.height:
        need = auto.resolve(cfg, lengths["len"].to_list()).lstm_history
        kept = lengths.filter(pl.col("len") >= need)
        if kept.height == lengths.height:
            break
        lengths = kept
    return frame.filter(pl.col(SERIES_ID).is_in(lengths[SERIES_ID].implode()))


def trained_through(prepared: Prepared, full_history: bool = False) -> dict[str, str]:
    """Per series, the last timestamp a model trained on `prepared` has seen: the end of its
    training part, or with `full_history` its last observation (the shipped model,
    tasks/model/refit.py)."""
    ends = prepared.offsets[1:] if full_history else prepared.train_end
    return {
        str(sid): iso(prepared.timestamps[int(ends[s]) - 1])
        for s, sid in enumerate(prepared.series_ids)
    }

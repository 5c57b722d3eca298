"""Covariates as model inputs: scaled, encoded and windowed beside the values
(tasks/features/prepare.py).

Kinds (data.covariates): past covariates are observed up to the forecast origin and join the
recurrent inputs as extra channels of the input window; future-known covariates are read for
the `horizon` steps after the origin (the head sees them); static covariates are one row per
series (numeric scaled, text one-hot).

Scaling: global, not per series. Each numeric covariate gets one mean and standard deviation,
fitted on the training part of every series only (rows before each series' `train_end`; statics:
over the series). Per-series scaling would give the same covariate value a different input in
each series (a promotion flag would be +3 in a series where it is rare and +0.5 where it is
common) and would be undefined for a flag that never changes within one series' training part;
the model is global across series, so it needs one meaning per value. A zero deviation scales
by 1 (the covariate is then only centred).

Windows are never materialised for all starts: `past_windows` and `future_windows` index a
zero-copy `sliding_window_view` of the contiguous (N, k) arrays with a batch of starts, and the
training pipeline gathers them batch by batch (tasks/features/windows.py), the same way as the
values. A window never crosses series: the starts are the value windows' starts, generated per
series.

The future values of the horizon after each series' last observation (data.future_path,
validated by ingest) are `future_tail` (S, horizon, F): publish and the shipped refit's forecast
read them; every other window's future block lies inside the history (the backtest thereby feeds
each fold the actual future covariates of its horizon, as they were known).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.config import Config
from tasks.errors import PipelineError

KINDS = ("past", "future", "static")


class MissingFutureCovariates(PipelineError):
    """A forecast needs future covariate values that were not supplied."""


def _standardize(x: np.ndarray, fit_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per column of `x` over the rows `fit_rows`; scale 1 where constant."""
    if x.shape[1] == 0:
        return np.zeros(0), np.ones(0)
    fit = x[fit_rows]
    mean = fit.mean(axis=0)
    scale = fit.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


@dataclass
class Covariates:
    """Raw covariate values of a prepared set (saved with it) and their model encodings."""

    past_names: tuple[str, ...]
    future_names: tuple[str, ...]
    static_names: tuple[str, ...]
    past_raw: np.ndarray  # (N, P) float64
    future_raw: np.ndarray  # (N, F) float64, the history's own steps
    tail_raw: np.ndarray  # (S, H, F) float64: the horizon after each series' end (NaN: unknown)
    static_raw: dict[str, np.ndarray]  # name -> (S,) float64 or str
    # encodings (`encode` fills them)
    past: np.ndarray | None = None  # (N, P) float32 scaled
    future: np.ndarray | None = None  # (N, F) float32 scaled
    # (N, P + F) float32: what joins the values in the input window. Future-known covariates
    # are observed over the window too, and the model needs their past values to tell a
    # promotion's spike a season ago (the seasonal base) from the level.
    recurrent: np.ndarray | None = None
    tail: np.ndarray | None = None  # (S, H, F) float32 scaled
    static: np.ndarray | None = None  # (S, K) float32: scaled numbers, one-hot categories
    static_features: tuple[str, ...] = ()  # name of each of the K static columns
    stats: dict | None = None  # what the scaling learnt (JSON-able): mean, scale, categories
    series_lengths: np.ndarray | None = None  # (S,) points per series (the static row of each)

    @property
    def n_past(self) -> int:
        return len(self.past_names)

    @property
    def n_future(self) -> int:
        return len(self.future_names)

    @property
    def n_static(self) -> int:
        return 0 if self.static is None else int(self.static.shape[1])

    def used(self) -> dict[str, list[str]]:
        """Which covariates the model reads, by kind (lineage, metrics, champion meta)."""
        return {
            "past": list(self.past_names),
            "future": list(self.future_names),
            "static": list(self.static_names),
        }

    # -------------------------------------------------------------- encoding
    def encode(self, offsets: np.ndarray, train_end: np.ndarray) -> Covariates:
        """Scale and one-hot with statistics of the training parts only (see module doc)."""
        n = int(offsets[-1])
        lengths = np.diff(offsets)
        self.series_lengths = lengths
        position = np.arange(n) - np.repeat(offsets[:-1], lengths)
        in_train = position < np.repeat(train_end - offsets[:-1], lengths)
        stats: dict = {}
        p_mean, p_scale = _standardize(self.past_raw, in_train)
        f_mean, f_scale = _standardize(self.future_raw, in_train)
        self.past = ((self.past_raw - p_mean) / p_scale).astype(np.float32)
        self.future = ((self.future_raw - f_mean) / f_scale).astype(np.float32)
        self.tail = ((self.tail_raw - f_mean) / f_scale).astype(np.float32)
        self.recurrent = np.ascontiguousarray(np.concatenate([self.past, self.future], axis=1))
        for names, mean, scale in ((self.past_names, p_mean, p_scale),
                                   (self.future_names, f_mean, f_scale)):  # fmt: skip
            for i, name in enumerate(names):
                stats[name] = {"mean": float(mean[i]), "scale": float(scale[i])}
        columns, features = [], []
        every_series = np.ones(len(lengths), dtype=bool)
        for name in self.static_names:
            raw = self.static_raw[name]
            if raw.dtype.kind in "fiub":
                col = raw.astype(np.float64)[:, None]
                mean, scale = _standardize(col, every_series)
                columns.append((col - mean) / scale)
                features.append(name)
                stats[name] = {"mean": float(mean[0]), "scale": float(scale[0])}
            else:
                categories = sorted(set(raw.astype(str).tolist()))
                columns.append(raw.astype(str)[:, None] == np.array(categories)[None, :])
                features += [f"{name}={c}" for c in categories]
                stats[name] = {"categories": categories}
        width = sum(c.shape[1] for c in columns)
        self.static = (
            np.concatenate(columns, axis=1).astype(np.float32)
            if columns
            else np.zeros((len(lengths), width), np.float32)
        )
        self.static_features = tuple(features)
        self.stats = stats
        return self

    # -------------------------------------------------------------- windows
    @property
    def n_recurrent(self) -> int:
        return self.n_past + self.n_future

    def past_windows(self, starts: np.ndarray, lookback: int) -> np.ndarray:
        """(n, lookback, P + F) covariates over the input windows at `starts` (past ones and the
        future-known ones' observed values; a copy of those windows only)."""
        view = sliding_window_view(self.recurrent, lookback, axis=0)  # (N-L+1, P+F, L), no copy
        return np.ascontiguousarray(view[starts].transpose(0, 2, 1))

    def future_windows(
        self, starts: np.ndarray, offsets: np.ndarray, lookback: int, horizon: int, series_ids
    ) -> np.ndarray:
        """(n, horizon, F) future covariates of the horizon steps after each window's inputs:
        from the history where those steps are observed, else (a forecast from a series' last
        observation) the supplied future values, `tail`."""
        starts = np.asarray(starts, dtype=np.int64)
        series = np.searchsorted(offsets, starts, side="right") - 1
        begin = starts + lookback
        end = offsets[series + 1]
        out = np.empty((starts.size, horizon, self.n_future), dtype=np.float32)
        inside = begin + horizon <= end
        if inside.any():
            view = sliding_window_view(self.future, horizon, axis=0)  # (N - H + 1, F, H)
            out[inside] = view[begin[inside]].transpose(0, 2, 1)
        after = ~inside
        if after.any():
            if np.any(begin[after] != end[after]):
                raise ValueError("a window's horizon straddles the end of its series")
            out[after] = self.tail[series[after]]
            unknown = ~np.isfinite(out[after]).all(axis=(1, 2))
            if unknown.any():
                missing = [str(series_ids[s]) for s in series[after][unknown][:5]]
                raise MissingFutureCovariates(
                    f"no future covariate values ({', '.join(self.future_names)}) for the "
                    f"horizon after series {', '.join(missing)}: data.future_path must cover "
                    "the forecast.horizon steps after each series' last observation"
                )
        return out

    def series_of(self, offsets: np.ndarray) -> np.ndarray:
        """(N,) int32: the series index of every point (the static row a window reads)."""
        return np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(offsets))

    # -------------------------------------------------------------- persistence
    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "cov_past_names": np.array(self.past_names, dtype=str),
            "cov_future_names": np.array(self.future_names, dtype=str),
            "cov_static_names": np.array(self.static_names, dtype=str),
            "cov_past": self.past_raw,
            "cov_future": self.future_raw,
            "cov_tail": self.tail_raw,
        }
        for name in self.static_names:
            out[f"cov_static__{name}"] = self.static_raw[name]
        return out

    @classmethod
    def from_arrays(cls, z, offsets: np.ndarray, train_end: np.ndarray) -> Covariates | None:
        if "cov_past_names" not in z:
            return None
        statics = tuple(str(n) for n in z["cov_static_names"])
        return cls(
            past_names=tuple(str(n) for n in z["cov_past_names"]),
            future_names=tuple(str(n) for n in z["cov_future_names"]),
            static_names=statics,
            past_raw=z["cov_past"],
            future_raw=z["cov_future"],
            tail_raw=z["cov_tail"],
            static_raw={n: z[f"cov_static__{n}"] for n in statics},
        ).encode(offsets, train_end)


def from_frame(
    frame: pl.DataFrame,
    future: pl.DataFrame | None,
    cfg: Config,
    series_ids: np.ndarray,
    offsets: np.ndarray,
    train_end: np.ndarray,
) -> Covariates | None:
    """The declared covariates of a validated frame in (series_id, timestamp) order, with the
    future rows of the horizon (None or empty: unknown, as in a backtest fold's cut), encoded.
    None when no covariates are declared."""
    cov = cfg.data.covariates
    if not cov.any:
        return None
    horizon, n_series = cfg.forecast.horizon, len(series_ids)

    def numbers(names) -> np.ndarray:
        if not names:
            return np.zeros((frame.height, 0))
        return frame.select(pl.col(c).cast(pl.Float64) for c in names).to_numpy()

    tail = np.full((n_series, horizon, len(cov.future)), np.nan)
    if cov.future and future is not None and future.height:
        rows = pl.DataFrame({SERIES_ID: series_ids.astype(str)}).with_row_index("_s")
        known = future.join(rows, on=SERIES_ID, how="inner").sort(SERIES_ID, TIMESTAMP)
        step = known.select(pl.int_range(pl.len()).over(SERIES_ID).alias("_h"))["_h"]
        s, h = known["_s"].to_numpy(), step.to_numpy()
        keep = h < horizon
        tail[s[keep], h[keep]] = known.select(cov.future).to_numpy()[keep]
    firsts = offsets[:-1]
    static_raw = {}
    for name in cov.static:
        column = frame[name]
        values = column.gather(firsts).to_numpy()
        static_raw[name] = (
            values.astype(np.float64) if column.dtype.is_numeric() or column.dtype == pl.Boolean
            else values.astype(str)
        )  # fmt: skip
    return Covariates(
        past_names=tuple(cov.past),
        future_names=tuple(cov.future),
        static_names=tuple(cov.static),
        past_raw=numbers(cov.past),
        future_raw=numbers(cov.future),
        tail_raw=tail,
        static_raw=static_raw,
    ).encode(offsets, train_end)


def frame_columns(covariates: Covariates | None) -> dict[str, np.ndarray]:
    """Per-point covariate columns of the long frame (backtest folds rebuild it from arrays)."""
    if covariates is None:
        return {}
    out = {}
    for i, name in enumerate(covariates.past_names):
        out[name] = covariates.past_raw[:, i]
    for i, name in enumerate(covariates.future_names):
        out[name] = covariates.future_raw[:, i]
    return out


def static_columns(covariates: Covariates | None, lengths: np.ndarray) -> dict[str, np.ndarray]:
    if covariates is None:
        return {}
    return {n: np.repeat(covariates.static_raw[n], lengths) for n in covariates.static_names}

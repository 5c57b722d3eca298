"""Model inputs and forecasts, shared by train, evaluate, publish and export.

`model_inputs` is the one place that turns window starts into what a model reads: the values,
plus, for a model with a series embedding (`model.series_embedding` > 0), a second channel
holding each window's series index. Every caller of a trained model goes through it, so the
index a model reads after training refers to the series it referred to in training. Kept free
of Keras imports at module level so the stages that only load this module stay light.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tasks.errors import PipelineError
from tasks.features.prepare import Prepared


class DivergedModel(PipelineError):
    """The model produced NaN or infinite forecasts."""


class SeriesIndexError(PipelineError):
    """A series-embedding model was asked about a series its embedding table has no row for."""


# ---------------------------------------------------------------- inputs
def series_channel(prepared: Prepared, series_index: np.ndarray | None = None) -> np.ndarray:
    """(N,) float32 series index of every point: the extra input channel a series embedding
    reads (`model.series_embedding` > 0). Series s gets `series_index[s]` (default s, the
    order `prepare` sorts series in). Exact as float32 below 2**24 series."""
    lengths = np.diff(prepared.offsets)
    if series_index is None:
        series_index = np.arange(lengths.size)
    return np.repeat(np.asarray(series_index, dtype=np.float32), lengths)


def input_channels(model) -> int:
    """Channels of `model`'s first input: the values, the covariates over the window, and the
    series index with a series embedding. Objects that only have `predict` (no declared
    inputs) read the values alone."""
    inputs = getattr(model, "inputs", None)
    return int(inputs[0].shape[-1]) if inputs else 1


def has_series_embedding(model) -> bool:
    if not getattr(model, "inputs", None):
        return False
    from tasks.model.network import series_table_size  # Keras is loaded: `model` is a Keras model

    return series_table_size(model) is not None


def series_index_for(model_series: Sequence[str], series_ids: np.ndarray) -> np.ndarray:
    """(S,) row of each of `series_ids` in an embedding trained on `model_series` (in its
    training order). A series it never saw has no learnt vector: SeriesIndexError, naming it."""
    row = {str(sid): i for i, sid in enumerate(model_series)}
    missing = [str(sid) for sid in series_ids if str(sid) not in row]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise SeriesIndexError(
            f"the model's series embedding (model.series_embedding) has no vector for "
            f"{len(missing)} series ({shown}): it was trained on {len(row)} other series"
        )
    return np.array([row[str(sid)] for sid in series_ids], dtype=np.int64)


def model_inputs(
    prepared: Prepared,
    starts: np.ndarray,
    model,
    series_index: np.ndarray | None = None,
):
    """What `model` reads for the windows at `starts`: (n, lookback, channels) float32 inputs
    (the values, the covariates observed over the window, and the series-index channel when
    the model has a series embedding); with future-known or static covariates a list of that,
    (n, horizon, n_future) future covariates and (n, n_static) static features
    (tasks/features/covariates.py), in the model's input order.

    `series_index` (S,) maps each series of `prepared` to its row in the model's embedding
    table; the default, series s -> row s, holds for a model trained on this series set (the
    train stage's model and every backtest fold model). An index outside the table raises
    SeriesIndexError: `SeriesEmbedding` would clip it and forecast with another series'
    vector, without a sign.
    """
    geometry = prepared.geometry
    parts = [geometry.inputs(prepared.values, starts).astype(np.float32)]  # (n, L, 1)
    cov = prepared.covariates
    if cov is not None and cov.n_recurrent:
        parts.append(cov.past_windows(starts, geometry.lookback))  # (n, L, P + F)
    extra = []
    if cov is not None and cov.n_future:
        extra.append(
            cov.future_windows(
                starts, prepared.offsets, geometry.lookback, geometry.horizon, prepared.series_ids
            )
        )  # (n, H, F)
    if cov is not None and cov.n_static:
        series = np.searchsorted(prepared.offsets, starts, side="right") - 1
        extra.append(cov.static[series])  # (n, K)
    inputs = getattr(model, "inputs", None)
    if not inputs:  # an object with only `predict`: the values (and covariates)
        x = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        return [x, *extra] if extra else x
    channels = int(inputs[0].shape[-1])
    base = sum(p.shape[-1] for p in parts)
    if len(inputs) != 1 + len(extra) or channels not in (base, base + 1):
        have = "no covariates" if cov is None else f"covariates {cov.used()}"
        raise ValueError(
            f"the model reads {len(inputs)} input(s) of {channels} channel(s) first; the "
            f"prepared data has {have} ({base} channel(s), {1 + len(extra)} input(s)): it was "
            "trained with other data.covariates; retrain it"
        )
    if channels == base + 1:
        from tasks.model.network import (
            series_table_size,  # Keras is loaded: `model` is a Keras model
        )

        table = series_table_size(model)
        if table is None:
            raise ValueError(
                f"the model reads {channels} input channels; this pipeline feeds {base} "
                "(values and covariates), plus a series index with model.series_embedding > 0"
            )
        n_series = len(prepared.series_ids)
        index = np.arange(n_series) if series_index is None else np.asarray(series_index)
        if index.shape != (n_series,):
            raise ValueError(f"series_index has shape {index.shape}, expected ({n_series},)")
        if index.size and (index.min() < 0 or index.max() >= table):
            raise SeriesIndexError(
                f"series indices {int(index.min())}..{int(index.max())} reach outside the "
                f"model's series embedding table (rows 0..{table - 1}, model.series_embedding): "
                f"it was trained on another series set than these {n_series}; retrain it on them"
            )
        parts.append(geometry.inputs(series_channel(prepared, index), starts))  # (n, L, 1)
    x = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
    return [x, *extra] if extra else x


# ---------------------------------------------------------------- forecasts
def predict_scaled(
    prepared: Prepared,
    model,
    starts: np.ndarray,
    batch_size: int = 4096,
    series_index: np.ndarray | None = None,
):
    """(S, horizon) forecasts in the scaled space for the windows at `starts` (one per series).

    `series_index`: each series' row in the model's series embedding, when it differs from
    the series order of `prepared` (a champion trained on another series set; see
    `model_inputs`). Non-finite forecasts (a diverged model) raise DivergedModel before
    anything uses them.
    """
    x = model_inputs(prepared, starts, model, series_index)  # (S, L, channels) [, future, static]
    scaled = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
    expected = (len(starts), prepared.geometry.horizon)
    if scaled.shape != expected:
        raise ValueError(f"model output has shape {scaled.shape}, expected {expected}")
    bad = ~np.isfinite(scaled)
    if bad.any():
        raise DivergedModel(
            f"the model produced {int(bad.sum())} non-finite forecasts of {scaled.size} "
            "(training diverged?): lower training.learning_rate or training.clipnorm and rerun; "
            "nothing was evaluated or published"
        )
    return scaled


def to_original(prepared: Prepared, s: int, scaled: np.ndarray) -> np.ndarray:
    """Scaled values of series s back in original units; non-finite results (exp overflow of a
    wild forecast) raise DivergedModel."""
    out = prepared.to_original(s, scaled)
    if not np.isfinite(out).all():
        raise DivergedModel(
            f"forecasts of series {prepared.series_ids[s]!r} overflow in original units "
            "(training diverged?): nothing was evaluated or published"
        )
    return out


def forecast_original(prepared: Prepared, model, starts: np.ndarray, batch_size: int = 4096):
    """(S, horizon) forecasts in original units for the windows at `starts` (one per series)."""
    scaled = predict_scaled(prepared, model, starts, batch_size=batch_size)
    return np.stack([to_original(prepared, s, scaled[s]) for s in range(len(starts))])


def load_model(path):
    """Load a saved `.keras` model; importing tasks.model.network registers its custom layers."""
    import keras

    import tasks.model.network  # noqa: F401

    return keras.saving.load_model(path)

"""The forecasting model, in pure Keras 3 (``keras.layers``/``keras.ops``, no ``tf.*``).

Pure Keras so the same definition runs with ``KERAS_BACKEND=torch`` or ``jax`` on the GPU machine,
which has no TensorFlow. Layer names are fixed ("rnn_1", "dropout_1", ..., "head",
"seasonal_base", "forecast") so saved models, checkpoints and plots keep referring to the same
layers across runs. Every default keeps the recurrent layers cuDNN-eligible (tanh/sigmoid,
no recurrent dropout, no unroll, biases on, GRU reset_after): anything else silently falls back
to the generic kernel, about 3x slower on a GPU (shared/README.md).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU}


@keras.saving.register_keras_serializable(package="forecast")
class SeasonalBase(layers.Layer):
    """Seasonal-naive forecast of feature 0: the last season of the input window, tiled.

    Horizon step h (1-based) takes input position ``lookback - season_length + (h - 1) % m``.
    Added to the head's output, it makes the network learn only the change over the last season
    (in the log-scaled space: a log-ratio), which is small and nearly stationary.
    """

    def __init__(self, lookback: int, horizon: int, season_length: int, **kwargs):
        super().__init__(**kwargs)
        if lookback < season_length:
            raise ValueError(
                f"lookback ({lookback}) is shorter than season_length ({season_length}): "
                "the seasonal residual needs a full season in the input window"
            )
        self.lookback = lookback
        self.horizon = horizon
        self.season_length = season_length
        self._index = np.array(
            [lookback - season_length + (h % season_length) for h in range(horizon)],
            dtype="int32",
        )

    def call(self, inputs):
        # (batch, lookback, n_features) -> (batch, horizon)
        return ops.take(inputs[:, :, 0], self._index, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "lookback": self.lookback,
            "horizon": self.horizon,
            "season_length": self.season_length,
        }


@keras.saving.register_keras_serializable(package="forecast")
class RelativeToLast(layers.Layer):
    """Subtract each window's last time step from every time step."""

    def call(self, inputs):
        # (batch, lookback, n_features) -> same shape
        return inputs - inputs[:, -1:, :]


def build_model(
    lookback: int,
    horizon: int,
    *,
    n_features: int = 1,
    cell: str = "lstm",
    units: tuple[int, ...] = (32, 16),
    dropout: float = 0.1,
    bidirectional: bool = False,
    seasonal_residual: bool = True,
    season_length: int = 12,
    relative_inputs: bool = False,
    name: str = "forecaster",
) -> keras.Model:
    """Stacked LSTM/GRU -> Dense(horizon): all horizon steps at once (no recursive feedback)."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; one of {sorted(CELLS)}")
    if not units:
        raise ValueError("units needs at least one entry")
    if seasonal_residual and lookback < season_length:
        # Fail before building anything, with the same message SeasonalBase would give.
        SeasonalBase(lookback, horizon, season_length)

    inputs = keras.Input(shape=(lookback, n_features), name="input")  # (batch, lookback, n_feat)
    h = inputs
    if relative_inputs:
        # Each window relative to its last observation (in log space: log-ratios to it), so the
        # network sees shapes, not levels, and what it learns at 1950's level holds at 1960's.
        h = RelativeToLast(name="relative_to_last")(inputs)  # (batch, lookback, n_feat)
    for i, n in enumerate(units, start=1):
        last = i == len(units)
        extra = {"reset_after": True} if cell == "gru" else {}
        rnn = CELLS[cell](
            n,
            # cuDNN eligibility: these exact settings, or the slow generic kernel.
            activation="tanh",
            recurrent_activation="sigmoid",
            recurrent_dropout=0.0,
            unroll=False,
            use_bias=True,
            return_sequences=not last,
            name=f"rnn_{i}",
            **extra,
        )
        if bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"bidirectional_{i}")
        # not last: (batch, lookback, n * dirs); last: (batch, n * dirs), dirs = 2 if bidirectional
        h = rnn(h)
        h = layers.Dropout(dropout, name=f"dropout_{i}")(h)  # same shape as the rnn output
    out = layers.Dense(horizon, name="head")(h)  # (batch, horizon)
    if seasonal_residual:
        base = SeasonalBase(lookback, horizon, season_length, name="seasonal_base")(inputs)
        out = layers.Add(name="forecast")([out, base])  # (batch, horizon)
    return keras.Model(inputs, out, name=name)


def average_ensemble(models: list[keras.Model]) -> keras.Model:
    """One functional model (one input) whose output is the mean of the members' outputs.

    Members are nested as sub-models renamed "member_0", "member_1", ... (names must be unique
    within the ensemble); a single member is returned as it is.
    """
    if not models:
        raise ValueError("an ensemble needs at least one model")
    if len(models) == 1:
        return models[0]
    shape = tuple(models[0].inputs[0].shape[1:])
    inputs = keras.Input(shape=shape, name="input")  # (batch, lookback, n_features)
    outputs = []
    for i, m in enumerate(models):
        m.name = f"member_{i}"
        outputs.append(m(inputs))  # (batch, horizon)
    mean = layers.Average(name="ensemble_mean")(outputs)  # (batch, horizon)
    return keras.Model(inputs, mean, name="ensemble")

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

from tasks.model.spec import CELLS, ModelSpec


def cell_layer(cell: str) -> type[layers.Layer]:
    """The Keras layer class of a cell registered in `tasks.model.spec.CELLS`."""
    return getattr(layers, CELLS[cell].layer)


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
class SeasonalChannels(layers.Layer):
    """Channels [start, stop) of the input window one season before each horizon step, at the
    positions `SeasonalBase` reads the value: (batch, lookback, channels) -> (batch, horizon,
    stop - start). With the seasonal residual the head predicts the change over the last season,
    so it needs the future-known covariates at both ends of it: a promotion now and one a season
    ago move that change in opposite directions."""

    def __init__(
        self, lookback: int, horizon: int, season_length: int, start: int, stop: int, **kwargs
    ):
        super().__init__(**kwargs)
        self.lookback, self.horizon, self.season_length = lookback, horizon, season_length
        self.start, self.stop = start, stop
        self._index = np.array(
            [lookback - season_length + (h % season_length) for h in range(horizon)],
            dtype="int32",
        )

    def call(self, inputs):
        return ops.take(inputs[:, :, self.start : self.stop], self._index, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, self.stop - self.start)

    def get_config(self) -> dict:
        fields = ("lookback", "horizon", "season_length", "start", "stop")
        return {**super().get_config(), **{f: getattr(self, f) for f in fields}}


@keras.saving.register_keras_serializable(package="forecast")
class RelativeToLast(layers.Layer):
    """Subtract each window's last time step from every time step; with `channels`, only in
    the first `channels` channels (the values: covariates keep their level, which carries
    their meaning: a promotion flag of 1 is a promotion whatever the step before was)."""

    def __init__(self, channels: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, inputs):
        # (batch, lookback, n_features) -> same shape
        if self.channels is None:
            return inputs - inputs[:, -1:, :]
        k = self.channels
        head = inputs[:, :, :k] - inputs[:, -1:, :k]
        return ops.concatenate([head, inputs[:, :, k:]], axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        if self.channels is not None:  # saved models from before the argument load unchanged
            config["channels"] = self.channels
        return config


@keras.saving.register_keras_serializable(package="forecast")
class SeriesEmbedding(layers.Layer):
    """A learnt vector per series, looked up from the series-index channel (the last feature).

    The index rides along as a float channel of the input window (exact below 2**24 series), so
    the model keeps one input and every window carries its own series.
    """

    def __init__(self, n_series: int, dim: int, **kwargs):
        # Read the index in float32: autocast to a half-precision policy's compute dtype would
        # round it (bfloat16 is exact only up to 256, float16 up to 2048), so a series past
        # that would silently get a neighbour's vector.
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.n_series = n_series
        self.dim = dim
        self.embedding = layers.Embedding(n_series, dim, name="table", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.embedding.build((input_shape[0],))

    def call(self, inputs):
        # (batch, lookback, n_features) -> (batch, dim)
        index = ops.cast(ops.round(inputs[:, -1, -1]), "int32")
        return self.embedding(ops.clip(index, 0, self.n_series - 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_series": self.n_series, "dim": self.dim}


def _recurrent_stack(spec: ModelSpec, dtype) -> list[layers.Layer]:
    """rnn_1, dropout_1, ..., rnn_k, dropout_k [, attention]: all cuDNN-eligible settings."""
    units, dropout, attention = spec.units, spec.dropout, spec.attention
    stack = []
    for i, n in enumerate(units, start=1):
        last = i == len(units)
        extra = dict(CELLS[spec.cell].options)
        rnn = cell_layer(spec.cell)(
            n,
            # cuDNN eligibility: these exact settings, or the slow generic kernel.
            activation="tanh",
            recurrent_activation="sigmoid",
            recurrent_dropout=0.0,
            unroll=False,
            use_bias=True,
            # Attention reads every step of the last layer's output.
            return_sequences=not last or attention,
            name=f"rnn_{i}",
            dtype=dtype,
            **extra,
        )
        if spec.bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"bidirectional_{i}", dtype=dtype)
        stack.append(rnn)
        stack.append(layers.Dropout(dropout, name=f"dropout_{i}", dtype=dtype))
    if attention:
        stack.append(LastStepAttention(name="attention", dtype=dtype))
    return stack


@keras.saving.register_keras_serializable(package="forecast")
class LastStepAttention(layers.Layer):
    """Dot-product attention over the recurrent outputs, queried by the last step.

    (batch, lookback, d) -> (batch, 2 d): the last hidden state and the attention-weighted
    context of all steps, so the head sees the whole window, not only its final state.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attend = layers.Attention(name="dot", dtype=self.dtype_policy)

    def build(self, input_shape):
        d = input_shape[-1]
        self.attend.build([(input_shape[0], 1, d), input_shape])

    def call(self, inputs):
        query = inputs[:, -1:, :]  # (batch, 1, d)
        context = self.attend([query, inputs])  # (batch, 1, d)
        return ops.concatenate([inputs[:, -1, :], context[:, 0, :]], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])


@keras.saving.register_keras_serializable(package="forecast")
class RecursiveForecast(layers.Layer):
    """One-step model fed back `horizon` times: (batch, lookback, n_features) -> (batch, horizon).

    Each step the recurrent stack reads the current window (relative to its last value when
    `relative_inputs`), the head predicts the next value (as the change over one season ago
    when `seasonal_residual`), and the window shifts by one with that prediction appended.
    Features beyond the first (e.g. the series index) are carried forward unchanged. Trained
    end to end on all horizon steps (backpropagation through the feedback).
    """

    def __init__(self, spec: ModelSpec, **kwargs):
        # The fed-back window stays float32; the sub-layers cast to their own compute dtype.
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.spec = spec
        self.lookback, self.horizon = spec.lookback, spec.horizon
        self.seasonal_residual, self.season_length = spec.seasonal_residual, spec.season_length
        self.relative_inputs, self.embedding_dim = spec.relative_inputs, spec.embedding_dim
        dtype = self.dtype_policy
        self.stack = _recurrent_stack(spec, dtype)
        self.embed = SeriesEmbedding(spec.n_series, spec.embedding_dim, name="series_embedding",
                                     dtype=dtype) if spec.embedding_dim else None  # fmt: skip
        self.head = layers.Dense(1, name="head", dtype="float32")

    def build(self, input_shape):
        batch, lookback, n_features = input_shape
        shape = (batch, lookback, n_features - (1 if self.embed else 0))
        for layer in self.stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        if self.embed:
            self.embed.build(input_shape)
            shape = (shape[0], shape[-1] + self.embedding_dim)
        self.head.build(shape)

    def call(self, inputs, training=None):
        window = inputs  # (batch, lookback, n_features)
        extra = self.embed(inputs) if self.embed else None  # (batch, dim)
        n_values = inputs.shape[-1] - (1 if self.embed else 0)
        steps = []
        for _ in range(self.horizon):
            h = window[:, :, :n_values]
            if self.relative_inputs:
                h = h - h[:, -1:, :]
            for layer in self.stack:
                h = layer(h, training=training) if isinstance(layer, layers.Dropout) else layer(h)
            if extra is not None:
                h = ops.concatenate([h, ops.cast(extra, h.dtype)], axis=-1)
            step = self.head(h)  # (batch, 1), float32
            if self.seasonal_residual:
                step = step + window[:, -self.season_length, :1]
            steps.append(step)
            # Shift the window: the prediction becomes feature 0 of the newest step.
            new = ops.concatenate([ops.cast(step, window.dtype), window[:, -1, 1:]], axis=-1)
            window = ops.concatenate([window[:, 1:, :], new[:, None, :]], axis=1)
        return ops.concatenate(steps, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon)

    def get_config(self) -> dict:
        # Flat, as saved models have always stored it: the spec fields this layer reads.
        spec = {k: getattr(self.spec, k) for k in _RECURSIVE_FIELDS}
        return {**super().get_config(), **spec, "units": list(self.spec.units)}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        spec = {k: config.pop(k) for k in _RECURSIVE_FIELDS if k in config}
        return super().from_config({**config, "spec": ModelSpec(mode="recursive", **spec)})


# What a RecursiveForecast's saved config holds of its spec, in the order saved models have it
# (n_features, mode and precision are the model's input shape, the layer itself and its dtype).
_RECURSIVE_FIELDS = (
    "lookback", "horizon", "cell", "units", "dropout", "bidirectional", "attention",
    "seasonal_residual", "season_length", "relative_inputs", "n_series", "embedding_dim",
)  # fmt: skip


def build_model(spec: ModelSpec, name: str = "forecaster") -> keras.Model:
    """Stacked LSTM/GRU -> forecasts of all horizon steps, as `spec` describes.

    mode "direct": Dense(horizon) predicts every step at once (no feedback). mode "recursive":
    a one-step head fed back horizon times (`RecursiveForecast`). `attention` adds dot-product
    attention over the last recurrent layer's outputs. `embedding_dim` > 0 adds a learnt vector
    per series, read from an extra last input channel holding the series index (so the input
    has n_features + 1 channels). `precision` "mixed_float16"/"mixed_bfloat16" computes the
    recurrent layers in half precision with float32 variables; the head, the seasonal base and
    the output stay float32. The spec validated itself when it was made.
    """
    lookback, horizon, precision = spec.lookback, spec.horizon, spec.precision
    inputs = keras.Input(shape=(lookback, spec.channels), name="input")  # (batch, L, channels)
    # Future-known covariates of each horizon step, static covariate features of the series.
    future = keras.Input(shape=(horizon, spec.n_future), name="future") if spec.n_future else None
    static = keras.Input(shape=(spec.n_static,), name="static") if spec.n_static else None
    model_inputs = [t for t in (inputs, future, static) if t is not None]
    if spec.mode == "recursive":
        out = RecursiveForecast(spec, name="recursive", dtype=precision)(inputs)
        return keras.Model(inputs, out, name=name)

    h = inputs
    if spec.embedding_dim:
        # The series-index channel feeds only the embedding, never the recurrent layers.
        h = _ValueChannels(spec.n_features, name="value_channels")(inputs)
    if spec.relative_inputs:
        # Each window relative to its last observation (in log space: log-ratios to it), so the
        # network sees shapes, not levels, and what it learns at 1950's level holds at 1960's.
        # Covariate channels (after the value) keep their level.
        keep = 1 if spec.n_features > 1 else None
        h = RelativeToLast(keep, name="relative_to_last")(h)  # (batch, lookback, n_feat)
    # not last: (batch, lookback, n * dirs); last: (batch, n * dirs), dirs = 2 if bidirectional;
    # with attention the last is (batch, 2 * n * dirs): final state + attention context.
    for layer in _recurrent_stack(spec, precision):
        h = layer(h)
    if spec.embedding_dim:
        embed = SeriesEmbedding(
            spec.n_series, spec.embedding_dim, name="series_embedding", dtype=precision
        )
        e = embed(inputs)  # (batch, dim)
        h = layers.Concatenate(name="with_series", dtype=precision)([h, e])
    if future is not None or static is not None:
        parts = [h]
        if future is not None:
            # Every horizon step's known covariates reach the head, which maps them to the
            # steps (a promotion at step 5 can lift step 5): (batch, horizon * n_future).
            parts.append(layers.Flatten(name="future_flat", dtype=precision)(future))
            if spec.seasonal_residual:
                # The same covariates one season before each step (observed: in the window's
                # channels after the value and the past covariates), (batch, horizon * n_future).
                first = spec.n_features - spec.n_future
                ago = SeasonalChannels(
                    lookback, horizon, spec.season_length, first, spec.n_features,
                    name="future_season_ago",
                )(inputs)  # fmt: skip
                parts.append(layers.Flatten(name="future_ago_flat", dtype=precision)(ago))
        if static is not None:
            # A dense projection of the series' static features: (batch, units of the last
            # recurrent layer, at most 16).
            width = min(16, spec.units[-1])
            parts.append(
                layers.Dense(width, activation="tanh", name="static_projection", dtype=precision)(
                    static
                )
            )
        h = layers.Concatenate(name="with_covariates", dtype=precision)(parts)
    out = layers.Dense(horizon, name="head", dtype="float32")(h)  # (batch, horizon), float32
    if spec.seasonal_residual:
        base = SeasonalBase(lookback, horizon, spec.season_length, name="seasonal_base")(inputs)
        out = layers.Add(name="forecast", dtype="float32")([out, base])  # (batch, horizon)
    return keras.Model(model_inputs if len(model_inputs) > 1 else inputs, out, name=name)


@keras.saving.register_keras_serializable(package="forecast")
class _ValueChannels(layers.Layer):
    """The first `n` channels of the input (drops the series-index channel)."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    def call(self, inputs):
        return inputs[:, :, : self.n]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.n)

    def get_config(self) -> dict:
        return {**super().get_config(), "n": self.n}


def series_table_size(model) -> int | None:
    """Rows of the series-embedding table of `model` (None: it has no series embedding).

    Looks inside recursive layers and ensemble members, so callers can check that a series
    index is inside the table before `SeriesEmbedding` would silently clip it.
    """
    sizes: set[int] = set()

    def visit(layer) -> None:
        if isinstance(layer, SeriesEmbedding):
            sizes.add(layer.n_series)
        elif isinstance(layer, RecursiveForecast) and layer.embed is not None:
            sizes.add(layer.embed.n_series)
        elif isinstance(layer, keras.Model):
            for inner in layer.layers:
                visit(inner)

    visit(model)
    # Ensemble members are trained on the same data, so they share one table size.
    return min(sizes) if sizes else None


def average_ensemble(models: list[keras.Model]) -> keras.Model:
    """One functional model (one input) whose output is the mean of the members' outputs.

    Members are nested as sub-models renamed "member_0", "member_1", ... (names must be unique
    within the ensemble); a single member is returned as it is.
    """
    if not models:
        raise ValueError("an ensemble needs at least one model")
    if len(models) == 1:
        return models[0]
    # (batch, lookback, channels) [, (batch, horizon, n_future)] [, (batch, n_static)]
    names = ["static" if len(t.shape) == 2 else "future" if i else "input"
             for i, t in enumerate(models[0].inputs)]  # fmt: skip
    inputs = [
        keras.Input(shape=tuple(t.shape[1:]), name=n)
        for t, n in zip(models[0].inputs, names, strict=True)
    ]
    feed = inputs if len(inputs) > 1 else inputs[0]
    outputs = []
    for i, m in enumerate(models):
        m.name = f"member_{i}"
        outputs.append(m(feed))  # (batch, horizon)
    mean = layers.Average(name="ensemble_mean")(outputs)  # (batch, horizon)
    return keras.Model(feed, mean, name="ensemble")

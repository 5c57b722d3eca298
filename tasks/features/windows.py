"""Window geometry: the one object that knows where inputs and targets sit.

All series live back to back in one contiguous float32 array; series `s` is
`values[offsets[s]:offsets[s + 1]]`. A window is named by the absolute index of its first input
step, so a set of windows is just an integer array of starts (int32 while the values fit).
Inputs and targets are strided views (`sliding_window_view`, zero-copy) indexed by those starts,
one batch at a time: the full set of windows is never materialised, and no window crosses from
one series into the next because the starts are generated per series within its bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenate `arange(lo[i], hi[i] + 1)` for every i, without a Python loop.

    Empty where hi < lo. Used to list every valid window start of every series at once.
    """
    lo = np.asarray(lo, dtype=np.int64)
    counts = np.maximum(np.asarray(hi, dtype=np.int64) - lo + 1, 0)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    # position within its own range = global position - start of that range in the output
    seg_start = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(seg_start - lo, counts)


@dataclass(frozen=True)
class WindowGeometry:
    lookback: int
    horizon: int

    @property
    def width(self) -> int:
        return self.lookback + self.horizon

    # ------------------------------------------------------------------ which windows
    def starts_ending_by(self, first: np.ndarray, lo_end: np.ndarray, hi_end: np.ndarray):
        """Starts of windows whose target ends (exclusive index) lie in (lo_end, hi_end].

        `first` is each series' first absolute index, so no window starts before its series.
        """
        lo = np.maximum(first, np.asarray(lo_end) - self.width + 1)
        hi = np.asarray(hi_end) - self.width
        return ranges(lo, hi)

    # ------------------------------------------------------------------ views
    def inputs(self, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(n, lookback, 1) inputs of the windows at `starts` (a copy of only those windows)."""
        view = sliding_window_view(values, self.lookback)  # (N - L + 1, L), zero-copy
        return view[starts][..., None]

    def targets(self, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(n, horizon) targets of the windows at `starts`."""
        view = sliding_window_view(values, self.horizon)
        return view[starts + self.lookback]

    @staticmethod
    def index_dtype(n_values: int) -> np.dtype:
        """int32 window starts where they fit: half the memory of the per-epoch permutation
        (9M windows: 36 MB instead of 72 MB, for every copy tf.data makes)."""
        return np.dtype(np.int32) if n_values < 2**31 else np.dtype(np.int64)

    def _gatherer(
        self, values: np.ndarray, index: np.ndarray | None, covariates=None, weights=None
    ):
        """batch of starts -> (inputs, targets (b, horizon)). Inputs: (b, lookback, channels):
        the value, the covariates over the window (`covariates.recurrent`), the series index;
        with future-known or static covariates a tuple of that, (b, horizon, n_future) and
        (b, n_static) (tasks/features/covariates.py). Every window's horizon lies inside its series'
        history (training and validation windows), so its future block is the observed one."""
        import tensorflow as tf

        series = tf.constant(np.asarray(values, dtype=np.float32))
        # (N,) a loss weight per point: a window weighs what its first point does (its series')
        weight = None if weights is None else tf.constant(np.asarray(weights, dtype=np.float32))
        extra = None if index is None else tf.constant(np.asarray(index, dtype=np.float32))
        c = covariates
        recurrent = tf.constant(c.recurrent) if c is not None and c.n_recurrent else None
        future = tf.constant(c.future) if c is not None and c.n_future else None
        static = tf.constant(c.static) if c is not None and c.n_static else None
        series_of = None
        if static is not None:
            lengths = np.asarray(c.series_lengths, dtype=np.int64)
            series_of = tf.constant(np.repeat(np.arange(lengths.size, dtype=np.int32), lengths))
        dtype = tf.as_dtype(self.index_dtype(len(values)))
        in_offsets = tf.range(self.lookback, dtype=dtype)
        out_offsets = tf.range(self.lookback, self.width, dtype=dtype)

        def gather(batch_starts):
            at = batch_starts[:, None] + in_offsets
            x = tf.gather(series, at)[..., None]
            if recurrent is not None:
                x = tf.concat([x, tf.gather(recurrent, at)], axis=-1)  # (b, L, 1 + P + F)
            if extra is not None:
                x = tf.concat([x, tf.gather(extra, at)[..., None]], axis=-1)
            y = tf.gather(series, batch_starts[:, None] + out_offsets)
            inputs = [x]
            if future is not None:
                inputs.append(tf.gather(future, batch_starts[:, None] + out_offsets))  # (b,H,F)
            if static is not None:
                inputs.append(tf.gather(static, tf.gather(series_of, batch_starts)))  # (b, K)
            x = tuple(inputs) if len(inputs) > 1 else x
            return (x, y) if weight is None else (x, y, tf.gather(weight, batch_starts))

        return gather

    def dataset(
        self,
        values: np.ndarray,
        starts: np.ndarray,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        index: np.ndarray | None = None,
        covariates=None,
        weights: np.ndarray | None = None,
    ):
        """A tf.data pipeline of (inputs, targets[, weights]) batches gathered from the array.

        Only the starts are shuffled; each batch gathers its windows on the fly, so memory
        stays at one copy of the series plus one batch, whatever the number of windows.
        `index` (N,) adds a second input channel gathered the same way (the series index a
        series embedding reads).
        """
        import tensorflow as tf

        gather = self._gatherer(values, index, covariates, weights)

        ds = tf.data.Dataset.from_tensor_slices(
            np.asarray(starts, dtype=self.index_dtype(len(values)))
        )
        if shuffle:
            ds = ds.shuffle(max(len(starts), 1), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)

    def epoch_dataset(
        self,
        values: np.ndarray,
        starts: np.ndarray,
        batch_size: int,
        seed: int,
        epochs: int,
        first_epoch: int = 0,
        index: np.ndarray | None = None,
        per_epoch: int | None = None,
        covariates=None,
        weights: np.ndarray | None = None,
    ):
        """Training batches for epochs first_epoch..epochs-1 as one stream, and steps per epoch.

        Epoch e visits the windows in the order of a permutation drawn from (seed, e) alone
        (stateless), so epoch 7 of a run resumed from a backup sees exactly the batches epoch 7
        of an uninterrupted run saw. The permutation is computed in the tf.data graph from the
        starts (no shuffle buffer: at 9M windows `Dataset.shuffle` would hold every start
        as a separate element). Pass `steps_per_epoch` to `fit` so one iterator spans the epochs.

        `per_epoch` (training.windows_per_epoch): each epoch visits only that many windows, the
        first `per_epoch` of its permutation: a sample without replacement within the epoch,
        a different one each epoch, the same for the same seed. At 9M windows an epoch of 200k
        gives early stopping and the learning-rate schedule 45 times more looks at validation
        loss for the same work. Only the int32 starts are permuted (36 MB at 9M), never the
        windows.
        """
        import tensorflow as tf

        starts = np.asarray(starts, dtype=self.index_dtype(len(values)))
        n = int(starts.size)
        if n == 0:
            raise ValueError("no training windows")
        take = n if per_epoch is None else min(int(per_epoch), n)
        steps = -(-take // batch_size)
        starts_t = tf.constant(starts)
        gather = self._gatherer(values, index, covariates, weights)

        def one_epoch(epoch):
            # A stateless shuffle of the starts themselves: one permuted copy, where sorting
            # random keys held the keys, their argsort and the gathered order at once (at 9M
            # windows a 445 MB peak against 106 MB).
            seed_pair = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(starts_t, seed=seed_pair)
            if take < n:
                order = order[:take]
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
        ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        # Shard by element (batch) across workers: there are no files to shard by.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE), steps

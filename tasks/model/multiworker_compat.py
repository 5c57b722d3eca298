"""Make `model.fit` work under MultiWorkerMirroredStrategy in Keras 3.15 (keras issue 20585).

Two places in keras/src/backend/tensorflow/trainer.py break with more than one worker:

1. `TensorFlowTrainer._maybe_symbolic_build` takes one batch from the distributed iterator to
   build the model symbolically. The batch holds PerReplica values, which it "reduces" with
   `strategy.reduce("MEAN", batch, axis=None)`: under multi-worker that is a cross-worker
   collective over the *input data*, which fails (and needs only shapes in any case).
   Fix: take this worker's first local replica's batch (`experimental_local_results(v)[0]`).
2. `reduce_per_replica(..., reduction="auto")` turns "auto" into "mean" and, for a
   multi-worker collective strategy, calls `strategy.reduce("MEAN", v, axis=0)`: the loss is a
   scalar, which has no axis 0. Fix: reduce rank-0 values over replicas only (`axis=None`).

Both are patched on the Keras classes/module in place, only when asked (`tasks.model.train.train`
calls `patch_keras_for_multi_worker` when its strategy is multi-worker), idempotently, and only
for the Keras versions checked here; single-worker training never runs the patched code paths'
changed branches. Remove this module when Keras fixes the issue upstream.
"""

from __future__ import annotations

import keras

TESTED_VERSIONS = ("3.15.",)
_PATCHED = False


def _first_local(strategy, value):
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras 3.15's method, with the local first replica's batch instead of a collective."""
    from keras.src import tree

    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tree.map_structure(
                lambda v: _first_local(self.distribute_strategy, v), batch
            )
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def patch_keras_for_multi_worker() -> bool:
    """Apply both fixes (once). Returns True when patched, False if already patched."""
    global _PATCHED
    if _PATCHED:
        return False
    if not keras.__version__.startswith(TESTED_VERSIONS):
        raise RuntimeError(
            f"tasks/model/multiworker_compat.py was written for Keras {TESTED_VERSIONS} and this "
            f"is {keras.__version__}: check whether keras issue 20585 is fixed (then delete the "
            "patch) or whether the patched functions changed"
        )
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            from keras.src import tree

            def _reduce(v):
                if getattr(v, "shape", None) is not None and len(v.shape) == 0:
                    return strategy.reduce("MEAN", v, axis=None)  # a scalar: replicas only
                return strategy.reduce("MEAN", v, axis=0)

            return tree.map_structure(_reduce, values)
        return original(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    _PATCHED = True
    return True

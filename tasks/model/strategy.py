"""Which devices training runs on: a tf.distribute strategy.

- GPUs present: MirroredStrategy over all local GPUs.
- CPU only: MirroredStrategy over `replicas` logical CPU devices split from the one physical CPU;
  two replicas split the global batch in halves, which is bit-reproducible with seeds and op
  determinism, but gives different weights than one replica. One CPU replica is still mirrored
  (`mirrored=True`, the default and training.mirrored's: the product trains under
  MirroredStrategy everywhere); `mirrored=False` gets TensorFlow's default strategy instead and
  saves the fixed per-epoch cost of mirroring over "/cpu:0" alone
  (`mirrored_1_replica_overhead_s_per_epoch` in benchmarks/results/training.json).
- ``TF_CONFIG`` naming more than one worker: MultiWorkerMirroredStrategy (multi-host);
  tasks/model/multiworker_compat.py makes ``model.fit`` work with it (keras issue 20585) and
  flows/multiworker.py starts the workers.

Splitting the CPU is only possible before the TensorFlow runtime initialises (the first op,
tensor or device listing of *logical* devices), so call `make_strategy` before anything else
touches TensorFlow in the process.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

TOO_LATE = "set training.replicas before TensorFlow initialises (run in a fresh process)"


def _workers() -> int:
    """Number of workers in TF_CONFIG (0 when unset or unreadable as a cluster spec)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        return len(json.loads(raw).get("cluster", {}).get("worker", []))
    except (ValueError, AttributeError):
        return 0


def _cpu_devices(replicas: int) -> list[str]:
    """Split the physical CPU into `replicas` logical devices; returns their names."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if replicas > 1:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
            )
        except RuntimeError:
            # The runtime is already up: fine if an earlier call made at least as many devices.
            if len(tf.config.list_logical_devices("CPU")) < replicas:
                raise RuntimeError(
                    f"{TOO_LATE}: asked for {replicas} CPU replicas, but TensorFlow is already "
                    f"running with {len(tf.config.list_logical_devices('CPU'))}"
                ) from None
    return [f"/cpu:{i}" for i in range(replicas)]


def worker_index() -> int:
    """This process's index in TF_CONFIG's worker list (0, the chief, when unset)."""
    raw = os.environ.get("TF_CONFIG")
    try:
        return int(json.loads(raw)["task"]["index"]) if raw else 0
    except (ValueError, KeyError, TypeError):
        return 0


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def make_strategy(replicas: int = 1, mirrored: bool = True) -> tf.distribute.Strategy:
    """The strategy to build, compile and fit under (see the module docstring)."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if _workers() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy(devices=[f"/gpu:{i}" for i in range(len(gpus))])
    devices = _cpu_devices(replicas)
    if replicas == 1 and not mirrored:
        return tf.distribute.get_strategy()  # the default strategy: no mirroring overhead
    return tf.distribute.MirroredStrategy(devices=devices)


# ------------------------------------------------------------------------------ GPU policy
def gpu_replicas(strategy: tf.distribute.Strategy) -> int:
    """Replicas of `strategy` that are GPUs (every worker's, under MultiWorkerMirroredStrategy)."""
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # TF's default strategy has none: one device, this process's
        return 0
    local_gpus = sum("GPU" in d.upper() for d in devices)
    if local_gpus == 0:
        return 0
    workers = max(_workers(), 1) if is_multi_worker(strategy) else 1
    return local_gpus * workers


def global_batch_size(batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """The batch one training step consumes across all replicas.

    The rule: on GPUs `training.batch_size` is per GPU, so the global batch is batch_size x the
    number of GPU replicas (each GPU gets a full batch's work; adding GPUs adds throughput,
    with the learning rate unchanged). On CPUs it is the global batch: CPU replicas (logical
    devices split from the same cores) and CPU workers split it, so a run's updates stay those
    of one process (and tests compare them bit for bit).
    """
    return batch_size * max(gpu_replicas(strategy), 1)

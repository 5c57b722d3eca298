"""MirroredStrategy on 2 logical CPU replicas (in one fresh process, where the CPU can still be
split): the global batch is split in halves, one step on a global batch gives the same loss and
weights as one replica on that batch, to float32 round-off, and two trainings with the same seed
on 2 replicas end bit-identical. (One process for both: the 2-replica determinism test that
test_train.py ran in a process of its own was merged here.)"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Stated tolerances (float32): per-replica means of equal halves, summed gradients.
LOSS_RTOL = 1e-6
WEIGHT_ATOL = 1e-6

ONE_STEP = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from tasks.strategy import make_strategy
    mirrored = make_strategy(2)  # before anything else touches TensorFlow
    import keras
    import tensorflow as tf
    from tasks.model import ModelSpec, build_model

    default = make_strategy(1, mirrored=False)  # one replica: the default strategy on /cpu:0
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 24, 1)).astype("float32")
    y = rng.normal(size=(16, 12)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # one global batch of 16

    # How the global batch is split: 8 windows per replica.
    dist = next(iter(mirrored.experimental_distribute_dataset(ds)))
    split = [int(t.shape[0]) for t in mirrored.experimental_local_results(dist[0])]

    def one_step(strategy, weights):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            spec = ModelSpec(lookback=24, horizon=12, units=(8,), dropout=0.0, relative_inputs=True)
            m = build_model(spec)
            m.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0), loss="mse")
        if weights is not None:
            m.set_weights(weights)
        start = [np.array(w) for w in m.get_weights()]
        h = m.fit(ds, epochs=1, verbose=0, shuffle=False)
        return start, h.history["loss"][0], m.get_weights()

    start, loss_1, w_1 = one_step(default, None)
    _, loss_2, w_2 = one_step(mirrored, start)

    # Reproducibility: the same seeded training twice on the 2 replicas. Only the mechanism
    # matters here (3 epochs); test_train.py checks that training learns.
    import tempfile
    from pathlib import Path
    from tasks.prepare import prepare
    from tasks.train import train
    from tests.tasks.test_train import seasonal_frame, tiny_config

    cfg = tiny_config(replicas=2, ensemble=1, epochs=3)
    prepared = prepare(seasonal_frame(), cfg)
    runs = [train(prepared, cfg, Path(tempfile.mkdtemp())) for _ in range(2)]
    w = [r.model.get_weights() for r in runs]
    print(json.dumps({{
        "replicas": [default.num_replicas_in_sync, mirrored.num_replicas_in_sync],
        "split": split,
        "loss": [loss_1, loss_2],
        "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(w_1, w_2)),
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(start, w_1)),
        "train_replicas": runs[0].summary["replicas"],
        "train_identical": all(np.array_equal(a, b) for a, b in zip(w[0], w[1])),
        "train_epochs": runs[0].summary["epochs"],
        "train_loss": runs[0].history["loss"].to_list(),
    }}))
    """
)


@pytest.mark.slow
def test_two_replicas_split_the_batch_match_one_replica_and_train_reproducibly():
    proc = subprocess.run(
        [sys.executable, "-c", ONE_STEP.format(root=str(ROOT))],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == [1, 2]
    assert out["split"] == [8, 8]  # the global batch of 16, halved
    loss_1, loss_2 = out["loss"]
    assert loss_2 == pytest.approx(loss_1, rel=LOSS_RTOL)
    assert out["moved"] > 1e-3  # the step changed the weights, so comparing them means something
    assert out["max_weight_diff"] <= WEIGHT_ATOL
    # Training on 2 replicas: bit-reproducible with a seed.
    assert out["train_replicas"] == 2
    assert out["train_epochs"] == [3] and len(out["train_loss"]) == 3
    assert all(math.isfinite(x) for x in out["train_loss"])
    assert out["train_identical"] is True


def test_one_cpu_replica_is_mirrored_unless_mirrored_false_asks_for_the_default_strategy():
    script = (
        "import tensorflow as tf\n"
        "from tasks.strategy import make_strategy\n"
        "s = make_strategy(1, mirrored=False)\n"
        "assert s is tf.distribute.get_strategy(), type(s)\n"
        "m = make_strategy(1)  # the default, like training.mirrored\n"
        "assert isinstance(m, tf.distribute.MirroredStrategy), type(m)\n"
        "assert m.num_replicas_in_sync == 1\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_worker_index_and_count_come_from_tf_config(monkeypatch):
    from tasks import strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategy._workers() == 0 and strategy.worker_index() == 0
    cfg = {
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 1},
    }
    monkeypatch.setenv("TF_CONFIG", json.dumps(cfg))
    assert strategy._workers() == 2
    assert strategy.worker_index() == 1
    monkeypatch.setenv("TF_CONFIG", "not json")
    assert strategy._workers() == 0 and strategy.worker_index() == 0

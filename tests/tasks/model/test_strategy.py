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

from tests.waits import HANG_S

ROOT = Path(__file__).resolve().parents[3]

# Stated tolerances (float32): per-replica means of equal halves, summed gradients.
LOSS_RTOL = 1e-6
WEIGHT_ATOL = 1e-6

ONE_STEP = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from tasks.model.strategy import global_batch_size, make_strategy
    mirrored = make_strategy(2)  # before anything else touches TensorFlow
    import keras
    import tensorflow as tf
    from tasks.model.network import ModelSpec, build_model

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
    from tasks.features.prepare import prepare
    from tasks.model.train import train
    from tests.tasks.model.test_train import seasonal_frame, tiny_config

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
        "global_batch": [global_batch_size(16, s) for s in (default, mirrored)],
    }}))
    """
)


@pytest.mark.slow
def test_two_replicas_split_the_batch_match_one_replica_and_train_reproducibly():
    proc = subprocess.run(
        [sys.executable, "-c", ONE_STEP.format(root=str(ROOT))],
        capture_output=True, text=True, timeout=HANG_S, cwd=ROOT,
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
    # The batch rule: CPU replicas split training.batch_size (GPU ones would each get it).
    assert out["global_batch"] == [16, 16]


def test_one_cpu_replica_is_mirrored_unless_mirrored_false_asks_for_the_default_strategy():
    script = (
        "import tensorflow as tf\n"
        "from tasks.model.strategy import make_strategy\n"
        "s = make_strategy(1, mirrored=False)\n"
        "assert s is tf.distribute.get_strategy(), type(s)\n"
        "m = make_strategy(1)  # the default, like training.mirrored\n"
        "assert isinstance(m, tf.distribute.MirroredStrategy), type(m)\n"
        "assert m.num_replicas_in_sync == 1\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=HANG_S, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_worker_index_and_count_come_from_tf_config(monkeypatch):
    from tasks.model import strategy

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


# ------------------------------------------------------------------------------ GPU install path
RUN_SH = ROOT / "run.sh"


def _variant(tmp_path: Path, nvidia_smi: str | None, **env: str) -> subprocess.CompletedProcess:
    """`./run.sh variant` (installs nothing) with a stand-in `nvidia-smi` script first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "nvidia-smi"
    if nvidia_smi is None:
        fake.unlink(missing_ok=True)
    else:
        fake.write_text("#!/bin/sh\n" + nvidia_smi + "\n")
        fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k != "FORECAST_GPU"}
    path = f"{bin_dir}:/usr/bin:/bin"  # no real nvidia-smi from elsewhere on PATH
    return subprocess.run([str(RUN_SH), "variant"], capture_output=True, text=True, timeout=HANG_S,
                          env={**base, "PATH": path, **env})  # fmt: skip


LISTS_A_GPU = "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0a1b2c3d)'"


@pytest.mark.parametrize(
    ("nvidia_smi", "env", "expected"),
    [
        (None, {}, "cpu"),  # no driver tools
        (LISTS_A_GPU, {}, "gpu"),
        ("echo 'No devices were found'; exit 6", {}, "cpu"),  # a driver, no GPU
        ("echo 'NVIDIA-SMI has failed because it could not communicate'; exit 9", {}, "cpu"),
        (LISTS_A_GPU, {"FORECAST_GPU": "0"}, "cpu"),  # the override, both ways
        (None, {"FORECAST_GPU": "1"}, "gpu"),
    ],
)
def test_run_sh_picks_the_gpu_variant_when_nvidia_smi_lists_a_gpu(
    tmp_path: Path, nvidia_smi, env, expected
):
    proc = _variant(tmp_path, nvidia_smi, **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def test_run_sh_rejects_a_bad_forecast_gpu_value(tmp_path: Path):
    proc = _variant(tmp_path, None, FORECAST_GPU="yes")
    assert proc.returncode == 64
    assert "FORECAST_GPU must be 0 (CPU TensorFlow) or 1 (GPU TensorFlow), got 'yes'" in (
        proc.stderr
    )


def test_the_lock_holds_both_tensorflow_variants_at_one_version_and_is_current():
    import tomllib

    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    cpu, gpu = packages["tensorflow-cpu"], packages["tensorflow"]
    assert cpu["version"] == gpu["version"] == "2.21.0"
    # The GPU wheel comes with its CUDA libraries (the and-cuda extra): no system CUDA needed.
    cuda = {d["name"] for d in gpu["optional-dependencies"]["and-cuda"]}
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-nccl-cu12"} <= cuda
    project = packages["lstm-forecast-pipeline"]
    groups = project["dev-dependencies"]
    assert [d["name"] for d in groups["cpu"]] == ["tensorflow-cpu"]
    assert [(d["name"], d.get("extra")) for d in groups["gpu"]] == [("tensorflow", ["and-cuda"])]
    # pyproject.toml and uv.lock agree (what `./run.sh` relies on with --frozen).
    # `python3 -m uv` as run.sh calls it: uv lives with the Python the venv was made from.
    base = getattr(sys, "_base_executable", None) or "python3"
    proc = subprocess.run([base, "-m", "uv", "lock", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=HANG_S)  # fmt: skip
    if "No module named uv" in proc.stderr:
        pytest.skip("uv is not installed for this Python (./run.sh installs it)")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("capabilities", "policy"),
    [
        ([], "float32"),  # CPU only
        ([(9, 0)], "mixed_bfloat16"),  # Hopper
        ([(8, 0), (8, 6)], "mixed_bfloat16"),  # Ampere
        ([(7, 5)], "mixed_float16"),  # Turing: float16 tensor cores, no bfloat16
        ([(8, 0), (7, 0)], "mixed_float16"),  # the least capable GPU decides
        ([(6, 1)], "float32"),  # Pascal: no tensor cores
    ],
)
def test_auto_precision_follows_the_gpus(capabilities, policy):
    from tasks.model.spec import auto_precision

    assert auto_precision(capabilities) == policy


@pytest.mark.parametrize("precision", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_default_model_layers_meet_the_cudnn_conditions(precision: str):
    """The model params.yaml describes, built by tasks/model/network.py, passes the exact predicates
    Keras' TensorFlow backend applies before it picks the cuDNN kernel (keras 3.15:
    keras/src/backend/tensorflow/rnn.py `cudnn_ok`, less its GPU check), in every precision
    `auto` can choose, and the cuDNN op takes that compute dtype."""
    import importlib

    from tensorflow.python.framework import dtypes, op_def_registry

    from tasks.config import load_config
    from tasks.model.network import build_model
    from tasks.model.spec import ModelSpec

    tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")  # the module, not rnn()
    cfg = load_config(ROOT / "params.yaml")
    cfg = cfg.model_copy(update={
        "training": cfg.training.model_copy(update={"mixed_precision": precision})
    })  # fmt: skip
    model = build_model(ModelSpec.from_config(cfg, n_series=3))
    recurrent = [layer for layer in model.layers if layer.name.startswith("rnn_")]
    assert len(recurrent) == len(cfg.model.units) >= 1
    allowed = {
        dtypes.as_dtype(t).name
        for a in op_def_registry.get("CudnnRNNV3").attr
        if a.name == "T"
        for t in a.allowed_values.list.type
    }
    for layer in recurrent:
        cell = layer.cell
        assert layer.use_cudnn in ("auto", True)
        assert layer.recurrent_dropout == 0  # else Keras skips cuDNN
        assert not any(isinstance(x, keras_masking()) for x in model.layers)  # no masks
        if type(layer).__name__ == "LSTM":
            ok = tf_rnn._do_lstm_arguments_support_cudnn(
                cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias
            )
        else:
            ok = tf_rnn._do_gru_arguments_support_cudnn(
                cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias,
                cell.reset_after,
            )  # fmt: skip
        assert ok, f"{layer.name} would fall back to the generic kernel"
        assert layer.compute_dtype in allowed
        assert layer.compute_dtype == {"float32": "float32", "mixed_float16": "float16",
                                       "mixed_bfloat16": "bfloat16"}[precision]  # fmt: skip


def keras_masking():
    import keras

    return keras.layers.Masking

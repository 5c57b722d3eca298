"""The train stage with `training.workers: 2` trains through the multi-worker launcher: two
workers on 127.0.0.1 (MultiWorkerMirroredStrategy, TF_CONFIG) end with identical weights, the
chief alone writes the single-process stage's outputs, which evaluate and publish consume
unchanged; a worker that fails fails the stage with its reason and leaves the previous outputs in
place. (One 2-worker cluster for the whole suite: the launcher-level test that trained a second
one was merged into this one.)"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import base_env, run, update_params

TRAIN_OUTPUTS = ("models/model.keras", "plots/training_curve.csv", "metrics/train.json")
# Two workers, and as little training as still makes a model: 2 epochs, and one backtest fold
# (evaluate then scores the train stage's own model instead of fitting another).
TWO_WORKERS = {"training": {"workers": 2, "epochs": 2}, "evaluate": {"n_windows": 1}}


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays: dict[str, np.ndarray] = {}

    def keep(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(keep)
    return arrays


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


@pytest.mark.slow
def test_two_worker_train_stage_feeds_evaluate_and_publish(project: Path):
    update_params(project, TWO_WORKERS)

    trained = run(["dvc", "repro", "train"], project, env=base_env())
    assert ran_stages(trained.stdout) == ["ingest", "prepare", "train"]
    summary = json.loads((project / "metrics/train.json").read_text())
    assert summary["workers"] == 2
    assert summary["replicas"] == 2  # one replica per worker, all-reduced as one strategy
    assert summary["epochs"] == [2]
    assert all((project / rel).is_file() for rel in TRAIN_OUTPUTS)
    # Each worker's scratch, and no staging left behind.
    assert sorted(p.name for p in (project / "checkpoints").iterdir()) == ["worker_0", "worker_1"]
    # All-reduced gradients: both workers' best weights (their own checkpoints) are identical,
    # and they are the chief's model (EarlyStopping restores the best weights).
    w0, w1 = (_h5_arrays(project / f"checkpoints/worker_{i}/member_0.weights.h5") for i in (0, 1))
    assert w0 and w0.keys() == w1.keys()
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)
    from tasks.forecast import load_model

    model = load_model(project / "models/model.keras")
    saved = [np.asarray(w) for w in model.get_weights()]
    model.load_weights(project / "checkpoints/worker_1/member_0.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(saved, model.get_weights(), strict=True))
    assert not list(project.glob("checkpoints/**/*.keras"))  # only the chief's, in models/

    rest = run(["dvc", "repro"], project, env=base_env())
    assert ran_stages(rest.stdout) == ["evaluate", "publish"]
    assert json.loads((project / "metrics/gate.json").read_text())["passed"] is True
    forecasts = pl.read_parquet(project / "published/forecasts.parquet")
    assert forecasts.height == 24  # the horizon after the last observation (1961-1962)
    values = forecasts["forecast"].to_numpy()
    assert np.isfinite(values).all()
    # AirPassengers ran 104-622 thousand a month through 1960; a seasonal-residual model, even
    # barely trained, stays in its order of magnitude.
    assert values.min() > 100 and values.max() < 2000
    assert run(["dvc", "status", "--json"], project, env=base_env()).stdout.strip() == "{}"


@pytest.mark.slow
def test_failed_worker_fails_the_stage_and_keeps_the_previous_outputs(project: Path):
    update_params(project, TWO_WORKERS)
    previous = {}
    for rel in TRAIN_OUTPUTS:  # stand-ins for an earlier run's outputs
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(f"previous {rel}\n")
        previous[rel] = (project / rel).read_bytes()
    # Inputs every worker fails to read (a half-written file, say), after TensorFlow started.
    (project / "data/prepared").mkdir(parents=True)
    (project / "data/prepared/arrays.npz").write_bytes(b"not an npz archive")
    (project / "models/scaler.npz").write_bytes(b"")

    failed = run([sys.executable, "-m", "flows.stages", "train"], project, env=base_env(),
                 check=False)  # fmt: skip
    assert failed.returncode == 2, failed.stderr
    assert "train failed: training with 2 workers failed: worker" in failed.stderr
    assert "exited with code 1" in failed.stderr
    assert "previous train outputs are unchanged" in failed.stderr
    # The failed worker's own reason, from its stderr, is in the message.
    assert "ValueError:" in failed.stderr, failed.stderr
    assert {rel: (project / rel).read_bytes() for rel in TRAIN_OUTPUTS} == previous
    assert not list((project / "checkpoints").glob(".multiworker-*"))


def test_a_cluster_whose_port_was_taken_is_started_again_on_new_ports(tmp_path, monkeypatch):
    """The launcher picks the ports and the workers bind them later; a worker that lost its
    port (TensorFlow's "Could not start gRPC server") makes the launcher start the cluster again,
    any other failure does not (no real training here: the cluster run is replaced)."""
    from flows import multiworker
    from tasks.config import parse_config

    cfg = parse_config({"training": {"workers": 2}})
    attempts = []

    def fake_cluster(n, common, env, logs, timeout):
        attempts.append(common)
        if len(attempts) == 1:
            logs[1].write_text("E0000 ... UNKNOWN: Could not start gRPC server\n")
            return {1: 1}
        args = dict(zip(common[::2], common[1::2], strict=False))
        Path(args["--model"]).write_text("model")
        Path(args["--history"]).write_text("member,epoch\n")
        Path(args["--metrics"]).write_text('{"epochs": [1]}')
        return {0: 0, 1: 0}

    monkeypatch.setattr(multiworker, "_run_cluster", fake_cluster)
    out = {k: tmp_path / f"out.{k}" for k in ("model", "history", "metrics")}
    summary = multiworker.run_workers(
        cfg, prepared=tmp_path / "a.npz", scaler=tmp_path / "s.pkl",
        checkpoints=tmp_path / "ckpt", **out,
    )  # fmt: skip
    assert len(attempts) == 2 and summary == {"epochs": [1]}
    assert out["model"].read_text() == "model"

    def failing_cluster(n, common, env, logs, timeout):
        attempts.append(common)
        logs[0].write_text("ValueError: bad input\n")
        return {0: 1}

    attempts.clear()
    monkeypatch.setattr(multiworker, "_run_cluster", failing_cluster)
    with pytest.raises(multiworker.TrainingFailed, match="ValueError: bad input"):
        multiworker.run_workers(
            cfg, prepared=tmp_path / "a.npz", scaler=tmp_path / "s.pkl",
            checkpoints=tmp_path / "ckpt", **out,
        )  # fmt: skip
    assert len(attempts) == 1  # not a port problem: no retry

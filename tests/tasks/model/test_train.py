"""Real training on a tiny synthetic seasonal series: result contents, loss going down.
(2-replica bit-reproducibility is checked in test_strategy.py, in the process that also checks
the 2-replica batch split.)"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import polars as pl
import pytest

from tasks.config import parse_config
from tasks.features.prepare import prepare
from tests.waits import HANG_S

ROOT = Path(__file__).resolve().parents[3]

TINY = {
    "forecast": {"horizon": 12},
    "prepare": {"lookback": 24, "validation_steps": 12},
    "model": {"units": [8], "dropout": 0.0},
    "training": {
        "epochs": 12,
        "batch_size": 16,
        "learning_rate": 0.01,
        "patience": 50,
        "lr_patience": 50,
        "ensemble": 2,
        "replicas": 1,
    },
}


def seasonal_frame(n: int = 240, seed: int = 0) -> pl.DataFrame:
    """Monthly trend x multiplicative season x noise: AirPassengers-like, positive."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    value = 100 * np.exp(0.01 * t + 0.2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.03, n))
    stamps = pl.date_range(
        pl.date(2000, 1, 1), pl.date(2000, 1, 1).dt.offset_by(f"{n - 1}mo"), "1mo", eager=True
    )
    return pl.DataFrame({"series_id": ["s"] * n, "timestamp": stamps, "value": value})


def tiny_config(**training):
    raw = {k: dict(v) for k, v in TINY.items()}
    raw["training"].update(training)
    return parse_config(raw)


def test_splitting_the_cpu_too_late_raises():
    script = (
        "import tensorflow as tf; tf.constant(1.0)\n"  # initialises the runtime with 1 CPU
        "from tasks.model.strategy import make_strategy\n"
        "assert make_strategy(1).num_replicas_in_sync == 1\n"  # one replica still works
        "make_strategy(2)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=HANG_S, cwd=ROOT
    )
    assert proc.returncode == 1
    assert "set training.replicas before TensorFlow initialises (run in a fresh process)" in (
        proc.stderr
    )


@pytest.mark.slow
def test_train_returns_ensemble_history_and_summary(tmp_path: Path):
    from tasks.model.train import train

    cfg = tiny_config()
    prepared = prepare(seasonal_frame(), cfg)
    result = train(prepared, cfg, checkpoint_dir=tmp_path / "ckpt")

    h = result.history
    assert h.columns == ["member", "epoch", "loss", "val_loss", "learning_rate"]
    assert h["member"].unique().sort().to_list() == [0, 1]
    assert h.filter(pl.col("member") == 0)["epoch"].to_list() == list(range(1, 13))
    assert h["learning_rate"].to_list()[0] == pytest.approx(0.01)
    for m in (0, 1):
        loss = h.filter(pl.col("member") == m)["loss"].to_list()
        assert loss[-1] < 0.5 * loss[0]  # training reduces the loss

    s = result.summary
    assert s["epochs"] == [12, 12]
    assert s["replicas"] == 1
    assert s["train_windows"] == prepared.train_starts.size == 181
    assert s["val_windows"] == prepared.val_starts.size == 12
    assert s["best_val_loss"] == pytest.approx(
        h.group_by("member").agg(pl.col("val_loss").min()).sort("member")["val_loss"].to_list()
    )
    assert s["seconds"] > 0
    json.dumps(s)  # JSON-able

    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "member_0.weights.h5",
        "member_1.weights.h5",
    ]
    # The ensemble is the mean of two different members and survives a .keras round trip.
    x = prepared.geometry.inputs(prepared.values, prepared.val_starts)
    members = [result.model.get_layer(f"member_{i}") for i in (0, 1)]
    outs = [np.asarray(m.predict(x, verbose=0)) for m in members]
    pred = np.asarray(result.model.predict(x, verbose=0))
    assert pred.shape == (12, 12)
    assert np.abs(outs[0] - outs[1]).max() > 1e-4
    np.testing.assert_allclose(pred, np.mean(outs, axis=0), rtol=1e-5, atol=1e-6)
    result.model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), pred)
    # Better than seasonal naive on the validation windows (the model learnt the trend).
    y = prepared.geometry.targets(prepared.values, prepared.val_starts)
    naive = np.tile(x[:, -12:, 0], (1, 1))
    assert np.mean((pred - y) ** 2) < np.mean((naive - y) ** 2)


def two_scales() -> pl.DataFrame:
    """The seasonal series and a second one whose noise dwarfs its season (a large MASE scale)."""
    rough = seasonal_frame(seed=1).with_columns(
        pl.lit("r").alias("series_id"),
        pl.col("value") * pl.Series(np.exp(np.random.default_rng(2).normal(0, 0.4, 240))),
    )
    return pl.concat([seasonal_frame(), rough])


def test_loss_weights_are_none_for_the_plain_loss_and_for_one_series():
    from tasks.model.train import loss_weights

    one = prepare(seasonal_frame(), tiny_config())
    assert loss_weights(one, tiny_config()) is None
    assert loss_weights(one, tiny_config(loss_weights="mase")) is None  # every weight 1
    two = prepare(two_scales(), tiny_config())
    assert loss_weights(two, tiny_config()) is None
    w = loss_weights(two, tiny_config(loss_weights="mase"))
    at = {str(sid): w[two.offsets[i]] for i, sid in enumerate(two.series_ids)}
    smooth, rough = at["s"], at["r"]
    assert smooth > 5 * rough  # the smooth series' errors count for more, as in MASE
    # An absolute loss weighs by 1 / the scale, not its square: the same order, less spread.
    w = loss_weights(two, tiny_config(loss_weights="mase", loss="mae"))
    at = {str(sid): w[two.offsets[i]] for i, sid in enumerate(two.series_ids)}
    smooth_abs, rough_abs = at["s"], at["r"]
    assert 1.0 < smooth_abs / rough_abs < smooth / rough
    # Balancing series alone (no MASE scale) is the plain loss where every series has the same
    # windows, and on one series.
    assert loss_weights(one, tiny_config(series_balance=True)) is None
    assert loss_weights(two, tiny_config(series_balance=True)) is None  # equal lengths
    frame = two_scales()
    rough = frame.filter(pl.col("series_id") == "r").tail(180)  # fewer windows
    uneven = prepare(pl.concat([frame.filter(pl.col("series_id") == "s"), rough]), tiny_config())
    w = loss_weights(uneven, tiny_config(series_balance=True))
    at = {str(sid): w[uneven.offsets[i]] for i, sid in enumerate(uneven.series_ids)}
    assert at["r"] > at["s"]  # a window of the shorter series counts for more


def test_the_loss_is_mse_or_mae():
    assert tiny_config().training.loss == "mse"
    with pytest.raises(ValueError, match="training.loss"):
        tiny_config(loss="huber")


@pytest.mark.slow
def test_mase_loss_weights_train_a_different_model_with_a_weighted_validation_loss(tmp_path):
    from tasks.model.train import train

    cfg = tiny_config(ensemble=1, epochs=4)
    prepared = prepare(two_scales(), cfg)
    plain = train(prepared, cfg, checkpoint_dir=tmp_path / "plain").history
    weighted = train(
        prepared, tiny_config(ensemble=1, epochs=4, loss_weights="mase"), tmp_path / "w"
    ).history
    assert plain.height == weighted.height == 4
    assert np.isfinite(weighted["loss"].to_numpy()).all()
    # the weights favour the smooth series, whose errors are smaller: a lower weighted loss
    assert weighted["val_loss"][0] < plain["val_loss"][0]


# ------------------------------------------------------------------------------ progress
EPOCH_LINE = re.compile(
    r"train member (\d+)/(\d+) epoch (\d+)/(\d+): loss (\S+) val_loss (\S+) lr (\S+) \| "
    r"(\S+) windows/s, (\S+) s, ETA <=(\S+)$"
)


@pytest.mark.slow
def test_every_epoch_logs_loss_val_loss_lr_rate_and_eta(tmp_path: Path, caplog):
    from tasks.model.train import train

    cfg = tiny_config(epochs=4, ensemble=2, windows_per_epoch=100)
    prepared = prepare(seasonal_frame(), cfg)
    with caplog.at_level(logging.INFO, logger="forecast.train"):
        result = train(prepared, cfg, checkpoint_dir=tmp_path / "ckpt")

    lines = [r.getMessage() for r in caplog.records if r.name == "forecast.train"]
    epoch_lines = [m for line in lines if (m := EPOCH_LINE.search(line))]
    assert len(epoch_lines) == 8  # one per member and epoch
    h = result.history.to_dicts()
    for m, row in zip(epoch_lines, h, strict=True):
        member, members, epoch, epochs = map(int, m.group(1, 2, 3, 4))
        assert (member - 1, members, epoch, epochs) == (row["member"], 2, row["epoch"], 4)
        # The logged figures are the history's (5 significant digits for the losses).
        assert float(m.group(5)) == pytest.approx(row["loss"], rel=1e-4)
        assert float(m.group(6)) == pytest.approx(row["val_loss"], rel=1e-4)
        assert float(m.group(7)) == pytest.approx(row["learning_rate"], rel=1e-2)
        assert m.group(8)[0].isdigit()  # windows/s, e.g. 1.2k
        assert float(m.group(9)) >= 0
    # The ETA counts down to zero at the last epoch of the last member.
    assert epoch_lines[-1].group(10) == "0s"
    assert result.summary["windows_per_epoch"] == 100
    assert result.summary["precision"] == "float32"  # auto on a CPU


def test_progress_logs_at_most_every_interval_with_rate_and_eta(caplog):
    from tasks.progress import Progress

    now = [0.0]
    log = logging.getLogger("forecast.test_progress")
    with caplog.at_level(logging.INFO, logger=log.name):
        p = Progress("evaluate", total=1000, unit="series", log=log, clock=lambda: now[0])
        logged = []
        for i in range(1, 1001):
            now[0] = i / 10  # 10 series per second
            logged.append(p.update(i))
        p.done()
    lines = [r.getMessage() for r in caplog.records]
    assert sum(logged) == 10  # at 10 s, 20 s, ... 100 s: never silent for longer than 10 s
    assert lines[0] == "evaluate: 100/1000 series (10 %), 10 series/s, ETA 1m30s"
    assert lines[-1] == "evaluate: 1000 series in 1m40s"


def test_run_logger_outside_a_run_is_the_standard_logger():
    from tasks.progress import run_logger

    assert run_logger("forecast.train") is logging.getLogger("forecast.train")


@pytest.mark.slow
def test_tensorflow_log_noise_stays_off_the_terminal_by_default():
    """A fresh process that imports the project, then TensorFlow, and runs an op and a tf.data
    pipeline (the `E0000 ... use_unbounded_threadpool` kind) prints nothing on stderr;
    TF_CPP_MIN_LOG_LEVEL=0 set by the user brings TensorFlow's own lines back."""
    script = (
        "import tasks, tensorflow as tf\n"
        "ds = tf.data.Dataset.range(8).map(lambda x: x * 2).batch(4)\n"
        "print(sum(int(b.numpy().sum()) for b in ds))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "FORECAST_TF"))}
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=HANG_S, cwd=ROOT, env=env)  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "56"
    assert quiet.stderr == ""
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"
    loud = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=HANG_S, cwd=ROOT, env=env)  # fmt: skip
    assert "oneDNN custom operations are on" in loud.stderr


PREFECT_TRAINING = """
import sys
sys.path.insert(0, {root!r})
import tasks
from prefect import flow
from prefect.runtime import flow_run
from tasks.features.prepare import prepare
from tasks.model.train import train
from tests.tasks.model.test_train import seasonal_frame, tiny_config


@flow(name="progress-check")
def check(ckpt: str) -> str:
    cfg = tiny_config(epochs=2, ensemble=1)
    train(prepare(seasonal_frame(), cfg), cfg, checkpoint_dir=ckpt)
    return flow_run.get_id()


print("RUN", check({ckpt!r}))
"""


@pytest.mark.slow
def test_epoch_lines_reach_the_prefect_run_logs_and_the_terminal(prefect_env, tmp_path: Path):
    """Inside a flow run the epoch lines go through Prefect's run logger: stored with the flow
    run (what the UI's Logs tab shows) and printed on the terminal by Prefect's console handler."""
    from tests.flows import api

    script = PREFECT_TRAINING.format(root=str(ROOT), ckpt=str(tmp_path / "ckpt"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=HANG_S, cwd=ROOT, env=prefect_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split("RUN")[-1].strip()
    terminal = [line for line in (proc.stdout + proc.stderr).splitlines() if "epoch 2/2:" in line]
    assert terminal and EPOCH_LINE.search(terminal[0].rstrip())
    server = prefect_env["PREFECT_API_URL"]
    logs = api.post(server, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
    stored = [m for log in logs if (m := EPOCH_LINE.search(log["message"]))]
    assert [m.group(3) for m in stored] == ["1", "2"]  # both epochs, in the run's own logs


@pytest.mark.slow
def test_the_train_stage_prints_one_line_per_epoch_and_no_tensorflow_noise(project_after_run):
    """What `dvc repro` shows of the train stage (the command its dvc.yaml stage runs), with
    the environment a user has (no TF_CPP_MIN_LOG_LEVEL of their own)."""
    from tests.conftest import base_env, run

    env = {k: v for k, v in base_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = run([sys.executable, "-m", "flows.stages", "train"], project_after_run, env=env)
    lines = proc.stderr.splitlines()
    epochs = [line for line in lines if EPOCH_LINE.search(line)]
    history = pl.read_csv(project_after_run / "plots/training_curve.csv")
    assert len(epochs) == history.height  # one line per member and epoch
    assert not [line for line in lines if re.match(r"[IWEF]\d{4} ", line)], proc.stderr[-2000:]
    assert "oneDNN" not in proc.stderr and "absl::InitializeLog" not in proc.stderr

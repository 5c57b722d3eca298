"""Train: fit `training.ensemble` seeded members under a tf.distribute strategy, average them.

Pure: returns the model, the per-epoch history and a summary; the caller writes stage outputs.
Only scratch goes to `checkpoint_dir` (not a stage output): the best-weights checkpoints, and
with `training.resume` a backup of every epoch under `checkpoint_dir/backup/` from which a run
killed mid-way resumes (see `EpochBackup`). Windows are gathered batch by batch by
`WindowGeometry.epoch_dataset`, never materialised at once; with `training.windows_per_epoch`
each epoch visits a fresh sample of that many.

Every epoch logs one line (loss, val_loss, learning rate, windows/s, ETA) through
`tasks.progress.run_logger` (Prefect's run logger inside a flow run, else the `forecast.train`
logger), and an epoch longer than 10 s logs its progress every 10 s (`EpochProgress`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import polars as pl

from tasks import safe_state
from tasks.config import Config, auto
from tasks.faults import fault_point
from tasks.features.prepare import Prepared

# model_inputs is re-exported: callers of a trained model have used it from here. Both live in
# tasks.model.forecast so evaluate and publish build the same inputs without importing training
# code.
from tasks.model.forecast import model_inputs as model_inputs
from tasks.model.forecast import series_channel
from tasks.model.network import ModelSpec, average_ensemble, build_model
from tasks.model.spec import resolve_precision
from tasks.model.strategy import (
    global_batch_size,
    is_multi_worker,
    make_strategy,
    worker_index,
)
from tasks.progress import EVERY_S, Progress, duration, rate, run_logger

if TYPE_CHECKING:
    import tensorflow as tf

HISTORY_COLUMNS = ("member", "epoch", "loss", "val_loss", "learning_rate")
BACKUP = "backup"  # under checkpoint_dir


@dataclass
class TrainResult:
    model: keras.Model  # ensemble average when training.ensemble > 1, else the single member
    history: pl.DataFrame  # one row per member and epoch: HISTORY_COLUMNS
    summary: dict  # JSON-able: epochs and best val_loss per member, replicas, windows, seconds


# ------------------------------------------------------------------------------ inputs
def resolved(cfg: Config) -> Config:
    """`cfg` with training.mixed_precision `auto` replaced by this machine's choice
    (tasks/model/spec.py: `auto_precision`)."""
    t = cfg.training
    precision = resolve_precision(t.mixed_precision)
    if precision == t.mixed_precision:
        return cfg
    training = t.model_copy(update={"mixed_precision": precision})
    return cfg.model_copy(update={"training": training})


def build_member(prepared: Prepared, cfg: Config, name: str = "forecaster") -> keras.Model:
    """The (uncompiled) model the config describes, for this prepared data."""
    cov = prepared.covariates
    spec = ModelSpec.from_config(
        resolved(cfg),
        n_features=1 + (cov.n_recurrent if cov is not None else 0),
        n_future=cov.n_future if cov is not None else 0,
        n_static=cov.n_static if cov is not None else 0,
        n_series=len(prepared.series_ids),
        lookback=prepared.geometry.lookback,
        horizon=prepared.geometry.horizon,
        season_length=prepared.season_length,
    )
    return build_model(spec, name=name)


def loss_weights(prepared: Prepared, cfg: Config) -> np.ndarray | None:
    """Per-point loss weights under training.loss_weights (Prepared.mase_weights), or None for
    the plain loss: also where every weight is 1 (one series), so such a run is the unweighted
    one bit for bit."""
    t = cfg.training
    if t.loss_weights != "mase" and not t.series_balance:
        return None
    power = 0 if t.loss_weights != "mase" else 2 if t.loss == "mse" else 1
    weights = prepared.mase_weights(power=power, balance=t.series_balance)
    return None if np.all(weights == 1.0) else weights


def make_optimizer(cfg: Config, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    """Adam with the configured clipping (and loss scaling under float16); the refit
    (tasks/model/refit.py) starts it at the replayed schedule's first rate."""
    t = cfg.training
    rate = t.learning_rate if learning_rate is None else learning_rate
    opt = keras.optimizers.Adam(learning_rate=rate, clipnorm=t.clipnorm)
    if resolve_precision(t.mixed_precision) == "mixed_float16":
        # float16 gradients underflow without loss scaling (bfloat16 has float32's range).
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


# ------------------------------------------------------------------------------ backup
def fingerprint(prepared: Prepared, cfg: Config) -> str:
    """What a backup belongs to: model and training params (but not `resume`), the data."""
    h = hashlib.md5()
    training = cfg.training.model_dump(exclude={"resume"})
    geometry = [prepared.geometry.lookback, prepared.geometry.horizon, prepared.validation_steps]
    doc = {"model": cfg.model.model_dump(), "training": training, "geometry": geometry,
           "season_length": prepared.season_length}  # fmt: skip
    h.update(json.dumps(doc, sort_keys=True, default=list).encode())
    for arr in (prepared.values, prepared.offsets, prepared.train_end):
        h.update(np.ascontiguousarray(arr).tobytes())
    cov = prepared.covariates
    if cov is not None:  # other covariates are other data: a backup of them does not resume
        for arr in (cov.recurrent, cov.future, cov.static):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _values(variables) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


class EpochBackup(keras.callbacks.Callback):
    """Everything a member's training needs to continue exactly where it stopped.

    After each epoch (this callback runs after EarlyStopping, ReduceLROnPlateau and
    ModelCheckpoint): the model's variables (weights and the dropout seed-generator states),
    the optimizer's (step, learning rate, moments), the three callbacks' counters and best
    values (EarlyStopping's best weights too) and the history so far, saved atomically in a
    format whose loading runs no code (tasks/safe_state.py).
    Keras' own BackupAndRestore keeps the first two only, so a resumed run would restart its
    patience counters and could stop, or cut the learning rate, at a different epoch.
    On train begin (after those callbacks reset themselves) a loaded state is put back.
    """

    def __init__(self, path: Path | None, state: dict | None, callbacks: dict[str, object]):
        super().__init__()
        self.path, self.state, self.callbacks = path, state, callbacks
        self.history: list[dict] = list(state["history"]) if state else []

    def on_train_begin(self, logs=None):
        if not self.state:
            return
        model = self.model
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for v, value in zip(model.variables, self.state["model"], strict=True):
            v.assign(value)
        for v, value in zip(model.optimizer.variables, self.state["optimizer"], strict=True):
            v.assign(value)
        for name, attrs in self.state["callbacks"].items():
            for attr, value in attrs.items():
                setattr(self.callbacks[name], attr, value)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.history.append({k: float(v) for k, v in logs.items()})
        fault_point(f"train.{self.model.name}.epoch_end.{epoch + 1}")  # tests: tasks/faults.py
        if self.path is None:
            return
        keep = {
            "early_stopping": ("wait", "best", "best_weights", "best_epoch", "stopped_epoch"),
            "reduce_lr": ("wait", "best", "cooldown_counter"),
            "checkpoint": ("best",),
        }
        state = {
            "epoch": epoch,
            "stopped": bool(self.model.stop_training),
            "model": _values(self.model.variables),
            "optimizer": _values(self.model.optimizer.variables),
            "callbacks": {
                name: {a: getattr(self.callbacks[name], a, None) for a in attrs}
                for name, attrs in keep.items()
            },
            "history": self.history,
        }
        safe_state.save(self.path, state)  # atomic, and loading it runs no code


# ------------------------------------------------------------------------------ progress
class EpochProgress(keras.callbacks.Callback):
    """A line per epoch: `train member 1/3 epoch 4/100: loss 0.0123 val_loss 0.0146
    lr 0.003 | 12.3k windows/s, 7.2 s, ETA <=11m30s`, and, inside an epoch, a line at most
    every `every_s` with the batches done, the rate and the epoch's ETA.

    The ETA is an upper bound: the remaining epochs of this member and of the members after it,
    at this run's mean epoch time; early stopping can end each member sooner. Runs after the
    other callbacks, so ReduceLROnPlateau has put the epoch's learning rate in the logs.
    """

    def __init__(
        self,
        *,
        member: int,
        members: int,
        epochs: int,
        windows: int,
        steps: int,
        log=None,
        every_s: float = EVERY_S,
        clock=None,
    ):
        super().__init__()
        self.member, self.members, self.epochs = member, members, epochs
        self.windows, self.steps, self.every_s = windows, steps, every_s
        self.log = log if log is not None else run_logger("forecast.train")
        self.clock = clock or time.monotonic
        self.seconds: list[float] = []
        self.within: Progress | None = None
        self.label = ""

    def on_epoch_begin(self, epoch, logs=None):
        member = f"{self.member + 1}/{self.members}"
        self.label = f"train member {member} epoch {epoch + 1}/{self.epochs}"
        self.within = Progress(self.label, total=self.steps, unit="batches", every_s=self.every_s,
                               log=self.log, clock=self.clock)  # fmt: skip

    def on_train_batch_end(self, batch, logs=None):
        # A cheap clock read per batch; the loss is converted (a device sync) only when logging.
        within = self.within
        if within is not None and self.clock() - within.last >= self.every_s:
            loss = (logs or {}).get("loss")
            within.update(batch + 1, "" if loss is None else f"loss {float(loss):.4g}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        took = self.clock() - self.within.started if self.within else 0.0
        self.seconds.append(took)
        lr = logs.get("learning_rate")
        if lr is None:
            lr = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        mean = sum(self.seconds) / len(self.seconds)
        left = (self.epochs - epoch - 1) + (self.members - self.member - 1) * self.epochs
        self.log.info(
            "%s: loss %.5g val_loss %.5g lr %.3g | %s windows/s, %.1f s, ETA <=%s",
            self.label, float(logs.get("loss", float("nan"))),
            float(logs.get("val_loss", float("nan"))), float(lr),
            rate(self.windows / took if took > 0 else 0.0), took, duration(left * mean),
        )  # fmt: skip


# ------------------------------------------------------------------------------ fitting
def _fit_member(
    prepared: Prepared,
    cfg: Config,
    strategy: tf.distribute.Strategy,
    member: int,
    checkpoint_dir: Path,
    backup: Path | None,
) -> tuple[keras.Model, list[dict], int]:
    """One member; returns the model, its per-epoch logs and the epoch it (re)started at."""
    import tensorflow as tf

    t = cfg.training
    seed = t.seed + member
    # Seeds python/numpy/backend RNGs; determinism makes op results (incl. the cross-replica
    # reduction) independent of thread scheduling, so a seed reproduces the weights bit for bit.
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    # Variables must be created under the scope to be mirrored on every replica.
    with strategy.scope():
        model = build_member(prepared, cfg, name=f"member_{member}")
        model.compile(optimizer=make_optimizer(cfg), loss=cfg.training.loss)

    done = backup / f"member_{member}.done.npz" if backup else None
    if done is not None and done.exists():
        # Finished before the interruption: its final weights and history, no training.
        saved = safe_state.load(done)
        model.set_weights(saved["weights"])
        return model, saved["history"], t.epochs

    state_path = backup / f"member_{member}.state.npz" if backup else None
    state = safe_state.load(state_path) if state_path is not None and state_path.exists() else None
    first = 0 if state is None else (t.epochs if state["stopped"] else state["epoch"] + 1)

    geometry, values = prepared.geometry, prepared.values
    channel = series_channel(prepared) if cfg.model.series_embedding else None
    batch = global_batch_size(t.batch_size, strategy)  # the rule: tasks/model/strategy.py
    weights = loss_weights(prepared, cfg)
    train_ds, steps = geometry.epoch_dataset(
        values, prepared.train_starts, batch, seed=seed, epochs=t.epochs,
        first_epoch=min(first, t.epochs - 1), index=channel, per_epoch=t.windows_per_epoch,
        covariates=prepared.covariates, weights=weights,
    )  # fmt: skip
    val_ds = geometry.dataset(
        values, prepared.val_starts, batch, index=channel, covariates=prepared.covariates,
        weights=weights,
    )  # fmt: skip
    named = {
        "early_stopping": keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=t.patience, restore_best_weights=True
        ),
        "reduce_lr": keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=t.lr_factor,
            patience=t.lr_patience,
            min_lr=t.min_learning_rate,
        ),
        "checkpoint": keras.callbacks.ModelCheckpoint(
            str(checkpoint_dir / f"member_{member}.weights.h5"),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        ),
    }
    recorder = EpochBackup(state_path, state, named)
    windows = min(prepared.train_starts.size, t.windows_per_epoch or prepared.train_starts.size)
    progress = EpochProgress(member=member, members=t.ensemble, epochs=t.epochs,
                             windows=int(windows), steps=steps)  # fmt: skip
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=t.epochs,
        initial_epoch=first,
        steps_per_epoch=steps,
        shuffle=False,  # the dataset already visits each epoch in its own seeded order
        callbacks=[*named.values(), recorder, progress],
        verbose=0,
    )
    if done is not None:
        safe_state.save(done, {"weights": model.get_weights(), "history": recorder.history})
    return model, recorder.history, first


def _history_frame(member: int, logs: list[dict], learning_rate: float) -> pl.DataFrame:
    n = len(logs)
    return pl.DataFrame(
        {
            "member": [member] * n,
            "epoch": list(range(1, n + 1)),
            "loss": [r["loss"] for r in logs],
            "val_loss": [r["val_loss"] for r in logs],
            # ReduceLROnPlateau logs the rate each epoch; fall back to the constant one if absent.
            "learning_rate": [r.get("learning_rate", learning_rate) for r in logs],
        },
        schema=dict.fromkeys(HISTORY_COLUMNS[:2], pl.Int64)
        | dict.fromkeys(HISTORY_COLUMNS[2:], pl.Float64),
    )


def train(
    prepared: Prepared,
    cfg: Config,
    checkpoint_dir: Path,
    strategy: tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Fit cfg.training.ensemble members (seeds seed, seed+1, ...) and average their forecasts.

    With `training.resume`, an earlier run of the same params and data that was killed resumes
    from its backup: finished members are loaded, the interrupted one continues after its last
    completed epoch, and the result equals an uninterrupted run's. The backup is removed once
    every member has finished.
    """
    # First thing: the CPU can only be split into replicas before TensorFlow initialises.
    if strategy is None:
        strategy = make_strategy(cfg.training.replicas, mirrored=cfg.training.mirrored)
    cfg = resolved(cfg)  # `auto` precision -> this machine's
    # `auto` batch size, windows per epoch, epochs, ensemble (tasks/config/auto.py), from the
    # whole series: the stages pass a config resolved already, so this changes nothing there.
    cfg = auto.resolve(cfg, prepared.lengths)
    if is_multi_worker(strategy):
        from tasks.model.multiworker_compat import patch_keras_for_multi_worker

        patch_keras_for_multi_worker()
    checkpoint_dir = Path(checkpoint_dir)
    backup_root = checkpoint_dir / BACKUP
    if is_multi_worker(strategy):
        # Every worker keeps its own scratch; only the chief's outputs are kept by the caller.
        checkpoint_dir = checkpoint_dir / f"worker_{worker_index()}"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    backup = None
    if cfg.training.resume:
        key = fingerprint(prepared, cfg)[:16]
        if backup_root.is_dir() and not is_multi_worker(strategy):
            for stale in backup_root.iterdir():  # another params/data combination's backup
                if stale.name != key:
                    shutil.rmtree(stale, ignore_errors=True)
        backup = backup_root / key
        if is_multi_worker(strategy):
            backup = backup / f"worker_{worker_index()}"
        backup.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    members, frames, epochs, best, resumed = [], [], [], [], []
    for i in range(cfg.training.ensemble):
        model, logs, first = _fit_member(prepared, cfg, strategy, i, checkpoint_dir, backup)
        frames.append(_history_frame(i, logs, cfg.training.learning_rate))
        members.append(model)
        epochs.append(len(logs))
        best.append(float(min(r["val_loss"] for r in logs)))
        resumed.append(first)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
        if not is_multi_worker(strategy):
            shutil.rmtree(backup_root, ignore_errors=True)
        else:  # the last worker out removes the (then empty) parents
            for parent in (backup.parent, backup_root):
                with contextlib.suppress(OSError):
                    parent.rmdir()

    summary = {
        "members": len(members),
        "epochs": epochs,
        "best_val_loss": best,
        "replicas": int(strategy.num_replicas_in_sync),
        "train_windows": int(prepared.train_starts.size),
        "windows_per_epoch": int(
            min(prepared.train_starts.size, cfg.training.windows_per_epoch or 1 << 62)
        ),
        "batch_size": cfg.training.batch_size,
        "max_epochs": cfg.training.epochs,
        "global_batch_size": global_batch_size(cfg.training.batch_size, strategy),
        "precision": cfg.training.mixed_precision,
        "val_windows": int(prepared.val_starts.size),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if any(resumed):
        summary["resumed_at_epoch"] = resumed
    return TrainResult(model=average_ensemble(members), history=pl.concat(frames), summary=summary)

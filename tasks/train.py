"""Train: fit `training.ensemble` seeded members under a tf.distribute strategy, average them.

Pure: returns the model, the per-epoch history and a summary; the caller writes stage outputs.
Only the best-weights checkpoints go to `checkpoint_dir` (scratch, not a stage output).
Windows are gathered batch by batch by `WindowGeometry.dataset`, never materialised at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import polars as pl

from tasks.config import Config
from tasks.model import average_ensemble, build_model
from tasks.prepare import Prepared
from tasks.strategy import make_strategy

if TYPE_CHECKING:
    import tensorflow as tf

HISTORY_COLUMNS = ("member", "epoch", "loss", "val_loss", "learning_rate")


@dataclass
class TrainResult:
    model: keras.Model  # ensemble average when training.ensemble > 1, else the single member
    history: pl.DataFrame  # one row per member and epoch: HISTORY_COLUMNS
    summary: dict  # JSON-able: epochs and best val_loss per member, replicas, windows, seconds


def _fit_member(
    prepared: Prepared,
    cfg: Config,
    strategy: tf.distribute.Strategy,
    member: int,
    checkpoint_dir: Path,
) -> tuple[keras.Model, dict[str, list[float]]]:
    import tensorflow as tf

    t, m = cfg.training, cfg.model
    seed = t.seed + member
    # Seeds python/numpy/backend RNGs; determinism makes op results (incl. the cross-replica
    # reduction) independent of thread scheduling, so a seed reproduces the weights bit for bit.
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    # Variables must be created under the scope to be mirrored on every replica.
    with strategy.scope():
        model = build_model(
            prepared.geometry.lookback,
            prepared.geometry.horizon,
            cell=m.cell,
            units=tuple(m.units),
            dropout=m.dropout,
            bidirectional=m.bidirectional,
            seasonal_residual=m.seasonal_residual,
            season_length=prepared.season_length,
            name=f"member_{member}",
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=t.learning_rate, clipnorm=t.clipnorm),
            loss="mse",
        )

    geometry, values = prepared.geometry, prepared.values
    train_ds = geometry.dataset(
        values, prepared.train_starts, t.batch_size, shuffle=True, seed=seed
    )
    val_ds = geometry.dataset(values, prepared.val_starts, t.batch_size)
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=t.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=t.lr_factor,
            patience=t.lr_patience,
            min_lr=t.min_learning_rate,
        ),
        keras.callbacks.ModelCheckpoint(
            str(checkpoint_dir / f"member_{member}.weights.h5"),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        ),
    ]
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=t.epochs, callbacks=callbacks, verbose=0
    )
    return model, history.history


def train(prepared: Prepared, cfg: Config, checkpoint_dir: Path) -> TrainResult:
    """Fit cfg.training.ensemble members (seeds seed, seed+1, ...) and average their forecasts."""
    # First thing: the CPU can only be split into replicas before TensorFlow initialises.
    strategy = make_strategy(cfg.training.replicas)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    members, frames, epochs, best = [], [], [], []
    for i in range(cfg.training.ensemble):
        model, hist = _fit_member(prepared, cfg, strategy, i, checkpoint_dir)
        n = len(hist["loss"])
        # ReduceLROnPlateau logs the rate each epoch; fall back to the constant one if absent.
        lr = hist.get("learning_rate", [cfg.training.learning_rate] * n)
        frames.append(
            pl.DataFrame(
                {
                    "member": [i] * n,
                    "epoch": list(range(1, n + 1)),
                    "loss": [float(v) for v in hist["loss"]],
                    "val_loss": [float(v) for v in hist["val_loss"]],
                    "learning_rate": [float(v) for v in lr],
                },
                schema={
                    "member": pl.Int64,
                    "epoch": pl.Int64,
                    "loss": pl.Float64,
                    "val_loss": pl.Float64,
                    "learning_rate": pl.Float64,
                },
            )
        )
        members.append(model)
        epochs.append(n)
        best.append(float(min(hist["val_loss"])))

    summary = {
        "members": len(members),
        "epochs": epochs,
        "best_val_loss": best,
        "replicas": int(strategy.num_replicas_in_sync),
        "train_windows": int(prepared.train_starts.size),
        "val_windows": int(prepared.val_starts.size),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return TrainResult(model=average_ensemble(members), history=pl.concat(frames), summary=summary)

"""The shipped model: refit on each series' full history, through its last observation.

The train stage's model stops learning at N - horizon (the test tail is held out to judge it),
so it never saw the newest `forecast.horizon` steps. Once the backtest has judged the
procedure, the model that publishes is fitted again, same hyperparameters, on every window of
the whole history (no validation tail, no test tail).

Epochs: with no held-out tail there is nothing to stop early on, so member i trains for the
epoch at which member i of the final fold's fit (the train stage, fold 0) reached its best
validation loss, that fit's early-stopping epoch, following the learning rate that fit logged
epoch by epoch (ReduceLROnPlateau's schedule, replayed).

Epoch size: each epoch samples as many windows as an epoch of the train stage's fit held
(`judged_epoch`; a fresh sample each epoch, without replacement), so the refit takes the
optimizer steps the judged fit took, epoch for epoch, and the replayed schedule means what it
meant there. The full history holds far more windows than the train stage's earliest fold (M3
monthly's tuning split: 40,419 against 3,321), and passing all of them made the refit a training
ten times the size of the one the backtest judged (83 s of evaluate's 188 s under a profile).
Scaling stays the train part's scaler, the one publish forecasts through. The backtest's fold
models, not this one, are what the gate scores: this model has seen every value there is, so no
score of it would be out of sample.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from tasks.config import Config, auto
from tasks.features.prepare import Prepared, trained_through


def full_history(prepared: Prepared) -> Prepared:
    """`prepared` with every observation in the training part and no validation tail: its
    training windows are every window whose target ends by the series' last observation."""
    return dataclasses.replace(prepared, train_end=prepared.offsets[1:].copy(), validation_steps=0)


def fit_schedule(history: pl.DataFrame) -> list[list[float]]:
    """Per member of the final fold's fit (the train stage's history: member, epoch, val_loss,
    learning_rate), the learning rate of each epoch up to and including its best one (the
    weights early stopping restored)."""
    if history.height == 0:
        raise ValueError("the training history is empty: rerun the train stage")
    schedule = []
    for _, part in sorted(history.group_by("member"), key=lambda kv: kv[0][0]):
        part = part.sort("epoch")
        best = int(np.argmin(part["val_loss"].to_numpy()))  # first epoch of the lowest loss
        schedule.append([float(v) for v in part["learning_rate"].to_numpy()[: best + 1]])
    return schedule


@dataclass
class RefitResult:
    model: object  # keras.Model: the ensemble average, as the train stage builds it
    summary: dict  # JSON-able: epochs per member, windows, last timestamp per series, seconds


def judged_epoch(fit_windows: int, windows_per_epoch: int | None) -> int:
    """Windows in one epoch of the train stage's fit: its training windows (`fit_windows`), or
    the resolved `training.windows_per_epoch` sample where that is smaller."""
    if fit_windows < 1:
        raise ValueError("the train stage's fit had no training windows: rerun prepare and train")
    return min(fit_windows, windows_per_epoch or fit_windows)


def refit(
    prepared: Prepared,
    cfg: Config,
    schedule: list[list[float]],
    windows_per_epoch: int | None = None,
) -> RefitResult:
    """Fit len(schedule) members (seeds training.seed, seed+1, ...) on the full history of
    `prepared` (the prepare stage's arrays), member i for len(schedule[i]) epochs at those
    learning rates, and average them. `windows_per_epoch`: windows sampled per epoch (the
    evaluate stage passes `judged_epoch` of the train stage's fit); None: the resolved
    `training.windows_per_epoch` (every window when that is null)."""
    import keras
    import tensorflow as tf

    from tasks.model.forecast import series_channel
    from tasks.model.network import average_ensemble
    from tasks.model.strategy import global_batch_size, make_strategy
    from tasks.model.train import build_member, loss_weights, make_optimizer, resolved

    strategy = make_strategy(cfg.training.replicas, mirrored=cfg.training.mirrored)
    cfg = resolved(cfg)  # `auto` precision -> this machine's, as the train stage built it
    cfg = auto.resolve(cfg, prepared.lengths)  # `auto` batch etc.: the train stage's values
    t = cfg.training
    full = full_history(prepared)
    batch = global_batch_size(t.batch_size, strategy)  # the train stage's rule
    starts = full.train_starts
    channel = series_channel(full) if cfg.model.series_embedding else None
    weights = loss_weights(full, cfg)  # the same for every member
    per_epoch = t.windows_per_epoch if windows_per_epoch is None else int(windows_per_epoch)
    optimizer_steps = 0
    started = time.perf_counter()
    members = []
    for i, rates in enumerate(schedule):
        seed = t.seed + i
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        with strategy.scope():
            model = build_member(full, cfg, name=f"member_{i}")
            optimizer = make_optimizer(cfg, learning_rate=rates[0])
            model.compile(optimizer=optimizer, loss=cfg.training.loss)
        # Epochs as the train stage counted them (module docstring, "Epoch size").
        ds, steps = full.geometry.epoch_dataset(
            full.values,
            starts,
            batch,
            seed=seed,
            epochs=len(rates),
            index=channel,
            per_epoch=per_epoch,
            covariates=full.covariates,
            weights=weights,
        )
        model.fit(
            ds,
            epochs=len(rates),
            steps_per_epoch=steps,
            shuffle=False,
            callbacks=[keras.callbacks.LearningRateScheduler(lambda e, _lr, r=rates: r[e])],
            verbose=0,
        )
        members.append(model)
        optimizer_steps += len(rates) * steps
    summary = {
        "members": len(members),
        "epochs": [len(r) for r in schedule],
        "epochs_from": "best validation epoch of each member of the train stage's fit",
        "train_windows": int(starts.size),
        "windows_per_epoch": int(min(starts.size, per_epoch or starts.size)),
        "optimizer_steps": int(optimizer_steps),  # all members
        "trained_through": trained_through(prepared, full_history=True),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return RefitResult(model=average_ensemble(members), summary=summary)

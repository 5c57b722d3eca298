"""prepare: split by time, fit the per-series scalers on the training part, save the arrays."""

from __future__ import annotations

from flows.stage import NO_RUN, Stage, StageContext
from tasks import io
from tasks.config import Config


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    import polars as pl

    from tasks.config import auto
    from tasks.features.prepare import prepare
    from tasks.progress import run_logger

    future = pl.read_parquet(STAGE.path("validated_future"))
    prepared = prepare(pl.read_parquet(STAGE.path("validated")), cfg, future)
    # What prepare() resolved `auto` to (the same lengths give the same values in every stage).
    chosen = auto.resolution(cfg, prepared.lengths)
    run_logger("forecast.prepare").info("prepare %s", chosen.describe())
    io.write_atomic(STAGE.path("prepared"), prepared.save_arrays)
    io.write_atomic(STAGE.path("scaler"), prepared.transform.save)
    return {**prepared.summary(), "auto": chosen.record()}


STAGE = Stage(
    name="prepare",
    run=run,
    reads=("validated", "validated_future"),
    writes=("prepared", "scaler"),
    params=(
        "data.season_length",
        "data.covariates",
        "forecast.horizon",
        "prepare",
        "evaluate.n_windows",
        "evaluate.step",
        # auto lookback's floor: a season with the seasonal residual (tasks/config/auto.py)
        "model.seasonal_residual",
    ),
    description="time-ordered split, scalers fitted on the training part",
)

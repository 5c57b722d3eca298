"""prepare: split by time, fit the per-series scalers on the training part, save the arrays."""

from __future__ import annotations

from flows.stage import NO_RUN, Stage, StageContext
from tasks import io
from tasks.config import Config


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    import polars as pl

    from tasks.features.prepare import prepare

    future = pl.read_parquet(STAGE.path("validated_future"))
    prepared = prepare(pl.read_parquet(STAGE.path("validated")), cfg, future)
    io.write_atomic(STAGE.path("prepared"), prepared.save_arrays)
    io.write_atomic(STAGE.path("scaler"), prepared.transform.save)
    return prepared.summary()


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
    ),
    description="time-ordered split, scalers fitted on the training part",
)

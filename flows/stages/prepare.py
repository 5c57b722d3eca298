"""prepare: split by time, fit the per-series scalers on the training part, save the arrays.

Only the series long enough for the LSTM (Config.lstm_history) are prepared; the shorter ones
are forecast by the other candidates in evaluate and publish, which read them from the
validated data (tasks/evaluation/short.py)."""

from __future__ import annotations

from flows.stage import NO_RUN, Stage, StageContext
from tasks import io
from tasks.columns import SERIES_ID
from tasks.config import Config
from tasks.errors import PipelineError


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    import polars as pl

    from tasks.config import auto
    from tasks.features.prepare import lstm_series, prepare
    from tasks.progress import run_logger

    validated = pl.read_parquet(STAGE.path("validated"))
    frame = lstm_series(validated, cfg)
    if frame.height == 0:
        lengths = validated.group_by(SERIES_ID).len()["len"].to_list()
        need = auto.resolve(cfg, lengths).lstm_history
        raise PipelineError(
            f"no series has the {need} steps the LSTM needs (prepare.lookback + "
            "2 * forecast.horizon + prepare.validation_steps + (evaluate.n_windows - 1) * "
            "evaluate.step): lower these in params.yaml"
        )
    future = pl.read_parquet(STAGE.path("validated_future"))
    prepared = prepare(frame, cfg, future)
    # What prepare() resolved `auto` to (the same lengths give the same values in every stage:
    # those of the LSTM series, tasks.features.prepare.lstm_series).
    chosen = auto.resolution(cfg, prepared.lengths)
    run_logger("forecast.prepare").info("prepare %s", chosen.describe())
    io.write_atomic(STAGE.path("prepared"), prepared.save_arrays)
    io.write_atomic(STAGE.path("scaler"), prepared.transform.save)
    short = validated[SERIES_ID].n_unique() - len(prepared.series_ids)
    return {**prepared.summary(), "auto": chosen.record(), "short_series": short}


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

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

    from tasks.features.prepare import lstm_series, prepare

    validated = pl.read_parquet(STAGE.path("validated"))
    frame = lstm_series(validated, cfg)
    if frame.height == 0:
        raise PipelineError(
            f"no series has the {cfg.lstm_history} steps the LSTM needs (prepare.lookback + "
            "2 * forecast.horizon + prepare.validation_steps + (evaluate.n_windows - 1) * "
            "evaluate.step): lower these in params.yaml"
        )
    future = pl.read_parquet(STAGE.path("validated_future"))
    prepared = prepare(frame, cfg, future)
    io.write_atomic(STAGE.path("prepared"), prepared.save_arrays)
    io.write_atomic(STAGE.path("scaler"), prepared.transform.save)
    short = validated[SERIES_ID].n_unique() - len(prepared.series_ids)
    return prepared.summary() | {"short_series": short}


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

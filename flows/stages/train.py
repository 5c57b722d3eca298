"""train: fit the LSTM (ensemble) under MirroredStrategy, save model, history and summary."""

from __future__ import annotations

from prefect import flow as prefect_flow

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.prepare import Prepared


def run(cfg: Config) -> dict:
    from tasks.train import train  # imports TensorFlow: only when this stage runs

    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    result = train(prepared, cfg, checkpoint_dir=paths.CHECKPOINTS)
    io.write_atomic(paths.MODEL, result.model.save)
    io.write_atomic(paths.HISTORY, result.history.write_csv)
    io.write_json(paths.METRICS_TRAIN, result.summary)
    return result.summary


@prefect_flow(name="train")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params))

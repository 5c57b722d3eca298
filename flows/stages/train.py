"""train: fit the LSTM (ensemble) under MirroredStrategy, save model, history and summary.

With training.workers > 1 the same outputs come from that many local worker processes under
MultiWorkerMirroredStrategy (flows/multiworker.py), and metrics/train.json says how many.
"""

from __future__ import annotations

from prefect import flow as prefect_flow

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.prepare import Prepared


def run(cfg: Config) -> dict:
    if cfg.training.workers > 1:
        # Separate processes, not this one: each needs its TF_CONFIG before TensorFlow starts,
        # and the in-process Prefect pipeline may have started TensorFlow already.
        from flows.multiworker import run_workers

        return run_workers(
            cfg,
            prepared=paths.PREPARED,
            scaler=paths.SCALER,
            model=paths.MODEL,
            checkpoints=paths.CHECKPOINTS,
            history=paths.HISTORY,
            metrics=paths.METRICS_TRAIN,
        )

    from tasks.train import train  # imports TensorFlow: only when this stage runs

    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    result = train(prepared, cfg, checkpoint_dir=paths.CHECKPOINTS)
    io.write_atomic(paths.MODEL, result.model.save)
    io.write_atomic(paths.HISTORY, result.history.write_csv)
    summary = {**result.summary, "workers": 1}  # same fields as a multi-worker run
    io.write_json(paths.METRICS_TRAIN, summary)
    return summary


@prefect_flow(name="train")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params))

"""train: fit the LSTM (ensemble) under MirroredStrategy, save model, history and summary.

The fit is on the earliest backtest fold's training part (evaluate.refit false, the default), so
the model evaluate scores on every fold is this one and evaluate trains none for the backtest.

With training.workers > 1 the same outputs come from that many local worker processes under
MultiWorkerMirroredStrategy (flows/multiworker.py), and metrics/train.json says how many.
"""

from __future__ import annotations

from flows.stage import NO_RUN, Stage, StageContext
from tasks import io
from tasks.config import Config


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    from tasks.config import auto
    from tasks.features.prepare import saved_lengths
    from tasks.progress import run_logger

    p = STAGE.path
    # `auto` params from the prepared series' lengths: the values prepare and evaluate use too.
    chosen = auto.resolution(cfg, saved_lengths(p("prepared")))
    run_logger("forecast.train").info("train %s", chosen.describe())
    cfg = chosen.config
    if cfg.training.workers > 1:
        # Separate processes, not this one: each needs its TF_CONFIG before TensorFlow starts,
        # and the in-process Prefect pipeline may have started TensorFlow already.
        from flows.multiworker import run_workers

        summary = run_workers(
            cfg,
            prepared=p("prepared"),
            scaler=p("scaler"),
            model=p("model"),
            checkpoints=p("checkpoints"),
            history=p("history"),
            metrics=p("metrics_train"),
        )
        summary["auto"] = chosen.record()
        io.write_json(p("metrics_train"), summary)
        return summary

    from tasks.evaluation.backtest import training_fold
    from tasks.features.prepare import Prepared
    from tasks.model.train import train  # imports TensorFlow: only when this stage runs

    # Without evaluate.refit the earliest backtest fold: this one model scores every fold.
    prepared = training_fold(Prepared.load(p("prepared"), p("scaler")), cfg)
    result = train(prepared, cfg, checkpoint_dir=p("checkpoints"))
    io.write_atomic(p("model"), result.model.save)
    io.write_atomic(p("history"), result.history.write_csv)
    # Same fields as a multi-worker run; "auto": what each `auto` param became, and from what.
    summary = {**result.summary, "workers": 1, "auto": chosen.record()}
    io.write_json(p("metrics_train"), summary)
    return summary


STAGE = Stage(
    name="train",
    run=run,
    reads=("prepared", "scaler"),
    writes=("model", "history", "metrics_train"),
    scratch=("checkpoints",),
    # evaluate's fold geometry: which fold this stage fits (backtest.training_fold).
    params=(
        "data.season_length",
        "forecast.horizon",
        "prepare",
        "evaluate.n_windows",
        "evaluate.step",
        "evaluate.refit",
        "model",
        "training",
    ),
    description="stacked LSTM/GRU under MirroredStrategy, early stopping, checkpoints",
)

"""One entry point per stage: read inputs, call the pure stage functions in `tasks`, write outputs.

Each stage is a Prefect flow (so a `dvc repro` shows up in the Prefect UI when a server is
configured) around a plain function `run_<stage>(cfg)` that holds the I/O. dvc.yaml calls
`python -m flows.stages STAGE`; `flows.pipeline` calls the same functions in one process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from prefect import flow

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.errors import GateFailed, PipelineError

log = logging.getLogger("forecast")

STAGES = ("ingest", "prepare", "train", "evaluate", "publish")


# ---------------------------------------------------------------- ingest
def run_ingest(cfg: Config) -> dict:
    from tasks.ingest import read_source, summarize, validate

    frame = validate(read_source(cfg.data.path), cfg)
    summary = summarize(frame)
    # Written only after validation passed: bad data leaves every earlier output as it was.
    io.write_atomic(paths.VALIDATED, frame.write_parquet)
    io.write_json(paths.METRICS_INGEST, summary)
    return summary


# ---------------------------------------------------------------- prepare
def run_prepare(cfg: Config) -> dict:
    import polars as pl

    from tasks.prepare import prepare

    prepared = prepare(pl.read_parquet(paths.VALIDATED), cfg)
    io.write_atomic(paths.PREPARED, prepared.save_arrays)
    io.write_atomic(paths.SCALER, prepared.transform.save)
    return prepared.summary()


# ---------------------------------------------------------------- train
def run_train(cfg: Config) -> dict:
    from tasks.prepare import Prepared
    from tasks.train import train

    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    result = train(prepared, cfg, checkpoint_dir=paths.CHECKPOINTS)
    io.write_atomic(paths.MODEL, result.model.save)
    io.write_atomic(paths.HISTORY, result.history.write_csv)
    io.write_json(paths.METRICS_TRAIN, result.summary)
    return result.summary


# ---------------------------------------------------------------- evaluate
def run_evaluate(cfg: Config) -> dict:
    import keras

    from tasks import model as _model  # noqa: F401  registers the custom layers for loading
    from tasks.evaluate import evaluate
    from tasks.gate import decide
    from tasks.prepare import Prepared

    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    model = keras.models.load_model(paths.MODEL)
    scores, test_forecast = evaluate(prepared, model, cfg)
    decision = decide(scores, cfg.gate)
    io.write_json(paths.METRICS_EVALUATE, scores)
    io.write_json(paths.METRICS_GATE, decision)
    io.write_atomic(paths.TEST_FORECAST, test_forecast.write_csv)
    return {"evaluate": scores, "gate": decision}


# ---------------------------------------------------------------- publish
def run_publish(cfg: Config, flow_run_id: str | None = None) -> dict:
    import keras
    import polars as pl

    from tasks import model as _model  # noqa: F401
    from tasks.lineage import collect_lineage
    from tasks.prepare import Prepared
    from tasks.publish import future_forecasts
    from tasks.store import publish_forecasts

    decision = io.read_json(paths.METRICS_GATE)
    if not decision.get("passed"):
        raise GateFailed(
            "NOT PUBLISHED: the evaluation gate failed "
            f"({'; '.join(decision.get('reasons', [])) or 'see metrics/gate.json'}); "
            f"the last published forecasts in {cfg.publish.store} are unchanged"
        )
    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    model = keras.models.load_model(paths.MODEL)
    forecasts = future_forecasts(pl.read_parquet(paths.VALIDATED), prepared, model, cfg)
    lineage = collect_lineage(
        data=paths.VALIDATED, params=DEFAULT_PARAMS, model=paths.MODEL, flow_run_id=flow_run_id
    )
    summary = publish_forecasts(forecasts, lineage, cfg.publish.store, cfg.publish.export)
    io.write_json(paths.METRICS_PUBLISH, summary)
    return summary


RUNNERS = {
    "ingest": run_ingest,
    "prepare": run_prepare,
    "train": run_train,
    "evaluate": run_evaluate,
    "publish": run_publish,
}


def _current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return flow_run.id


# Prefect flows around the runners: the same code, visible in the Prefect UI.
@flow(name="ingest", log_prints=True)
def ingest_flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run_ingest(load_config(params))


@flow(name="prepare", log_prints=True)
def prepare_flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run_prepare(load_config(params))


@flow(name="train", log_prints=True)
def train_flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run_train(load_config(params))


@flow(name="evaluate", log_prints=True)
def evaluate_flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run_evaluate(load_config(params))


@flow(name="publish", log_prints=True)
def publish_flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run_publish(load_config(params), flow_run_id=_current_flow_run_id())


FLOWS = {
    "ingest": ingest_flow,
    "prepare": prepare_flow,
    "train": train_flow,
    "evaluate": evaluate_flow,
    "publish": publish_flow,
}


def use_prefect() -> bool:
    """Run stages as Prefect flows when a Prefect API is configured.

    Without one, Prefect would start a throw-away server in every stage process (14-22 s each,
    shared/README.md) whose runs nobody can see; the plain runner does the same work.
    FORECAST_PREFECT=always|never overrides.
    """
    mode = os.environ.get("FORECAST_PREFECT", "auto")
    if mode in ("always", "never"):
        return mode == "always"
    return bool(os.environ.get("PREFECT_API_URL"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.stages", description=__doc__)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        # Validate params before any work, also when Prefect runs the flow.
        cfg = load_config(args.params)
        if use_prefect():
            result = FLOWS[args.stage](params=args.params)
        elif args.stage == "publish":
            result = run_publish(cfg)
        else:
            result = RUNNERS[args.stage](cfg)
    except PipelineError as err:
        print(f"{args.stage} failed: {err}", file=sys.stderr)
        return 2
    log.info("%s done: %s", args.stage, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())


"""evaluate: score the model and the baselines on the held-out tail; decide the gate."""

from __future__ import annotations

from prefect import flow as prefect_flow

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.gate import decide
from tasks.prepare import Prepared


def run(cfg: Config) -> dict:
    from tasks.evaluate import evaluate
    from tasks.forecast import load_model

    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    scores, test_forecast = evaluate(prepared, load_model(paths.MODEL), cfg)
    decision = decide(scores, cfg.gate)
    io.write_json(paths.METRICS_EVALUATE, scores)
    io.write_json(paths.METRICS_GATE, decision)
    io.write_atomic(paths.TEST_FORECAST, test_forecast.write_csv)
    return {"evaluate": scores, "gate": decision}


@prefect_flow(name="evaluate")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params))

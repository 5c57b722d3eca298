"""publish: if the gate passed, forecast the next horizon and store it with its lineage."""

from __future__ import annotations

from prefect import flow as prefect_flow
from prefect.runtime import flow_run

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.errors import GateFailed
from tasks.lineage import collect_lineage
from tasks.prepare import Prepared
from tasks.store import publish_forecasts


def check_gate() -> dict:
    decision = io.read_json(paths.METRICS_GATE)
    if not decision.get("passed"):
        reasons = "; ".join(decision.get("reasons", [])) or f"see {paths.METRICS_GATE}"
        raise GateFailed(
            f"NOT PUBLISHED: the evaluation gate failed ({reasons}); "
            "the last published forecasts are unchanged"
        )
    return decision


def run(cfg: Config, flow_run_id: str | None = None) -> dict:
    from tasks.forecast import load_model
    from tasks.publish import future_forecasts

    check_gate()
    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    forecasts = future_forecasts(prepared, load_model(paths.MODEL), cfg.data.frequency)
    lineage = collect_lineage(
        data=paths.VALIDATED, params=cfg.source, model=paths.MODEL, flow_run_id=flow_run_id
    )
    summary = publish_forecasts(forecasts, lineage, cfg.publish.store, cfg.publish.export)
    io.write_json(paths.METRICS_PUBLISH, summary)
    return summary


@prefect_flow(name="publish")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params), flow_run_id=flow_run.get_id())

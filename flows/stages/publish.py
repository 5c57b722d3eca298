"""publish: if the gate passed, forecast the next horizon with its prediction intervals, store it
with its lineage, and keep the published model as the champion for the next gate."""

from __future__ import annotations

import shutil

from prefect import flow as prefect_flow
from prefect.runtime import flow_run

from flows.git import head_commit
from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.errors import GateFailed
from tasks.gate import CHAMPION_META, CHAMPION_MODEL
from tasks.intervals import INTERVALS
from tasks.lineage import collect_lineage
from tasks.prepare import Prepared
from tasks.publish import champion_meta
from tasks.store import publish_forecasts


def check_gate() -> dict:
    decision = io.read_json(paths.METRICS_GATE)
    if not decision.get("passed"):
        reasons = "; ".join(decision.get("reasons", [])) or f"see {paths.METRICS_GATE}"
        raise GateFailed(
            f"NOT PUBLISHED: the evaluation gate failed ({reasons}); "
            "the last published forecasts and the champion are unchanged"
        )
    judged, model_md5 = decision.get("model_md5"), io.md5_file(paths.MODEL)
    if judged is not None and judged != model_md5:
        raise GateFailed(
            f"NOT PUBLISHED: {paths.METRICS_GATE} judged model {judged[:12]}, but "
            f"{paths.MODEL} is {model_md5[:12]}: rerun evaluate (dvc repro)"
        )
    return decision


def save_champion(meta: dict) -> None:
    """Copy the published model beside the store, then its metadata (each atomically; evaluate
    ignores metadata whose md5 does not match the model, should a crash fall between them)."""
    io.write_atomic(CHAMPION_MODEL, lambda tmp: shutil.copyfile(paths.MODEL, tmp))
    io.write_json(CHAMPION_META, meta)


def run(cfg: Config, flow_run_id: str | None = None) -> dict:
    from tasks.forecast import load_model
    from tasks.intervals import Calibration
    from tasks.publish import future_forecasts

    check_gate()
    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    calibration = Calibration.from_json(io.read_json(INTERVALS))
    model = load_model(paths.MODEL)
    forecasts = future_forecasts(prepared, model, cfg.data.frequency, calibration)
    lineage = collect_lineage(
        data=paths.VALIDATED,
        params=cfg.source,
        model=paths.MODEL,
        flow_run_id=flow_run_id,
        commit=head_commit(),
    )
    summary = publish_forecasts(forecasts, lineage, cfg.publish.store, cfg.publish.export)
    # After the store: the champion is always a model whose forecasts were published.
    save_champion(
        champion_meta(prepared, lineage["model_md5"], summary["run_key"], lineage["published_at"])
    )
    summary["champion"] = lineage["model_md5"]
    io.write_json(paths.METRICS_PUBLISH, summary)
    return summary


@prefect_flow(name="publish")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params), flow_run_id=flow_run.get_id())

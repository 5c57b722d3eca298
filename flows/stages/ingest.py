"""ingest: read the raw source, validate it, write the validated frame."""

from __future__ import annotations

from prefect import flow as prefect_flow

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.ingest import read_source, summarize, validate


def run(cfg: Config) -> dict:
    frame = validate(read_source(cfg.data.path), cfg)
    summary = summarize(frame)
    # Written only after validation passed: bad data leaves every earlier output as it was.
    io.write_atomic(paths.VALIDATED, frame.write_parquet)
    io.write_json(paths.METRICS_INGEST, summary)
    return summary


@prefect_flow(name="ingest")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params))

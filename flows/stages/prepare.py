"""prepare: split by time, fit the per-series scalers on the training part, save the arrays."""

from __future__ import annotations

import polars as pl
from prefect import flow as prefect_flow

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.prepare import prepare


def run(cfg: Config) -> dict:
    prepared = prepare(pl.read_parquet(paths.VALIDATED), cfg)
    io.write_atomic(paths.PREPARED, prepared.save_arrays)
    io.write_atomic(paths.SCALER, prepared.transform.save)
    return prepared.summary()


@prefect_flow(name="prepare")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params))

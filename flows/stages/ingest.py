"""ingest: read the raw source, validate it, write the validated frame."""

from __future__ import annotations

from flows.stage import NO_RUN, Stage, StageContext
from tasks import io
from tasks.config import Config
from tasks.errors import SourceUnavailable


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    from tasks.ingest import future_rows, ingest, read_source, summarize

    columns = cfg.data.columns.mapping()
    source = read_source(STAGE.path("raw", cfg), cfg.data.source, cfg.data.timezone, columns)
    result = ingest(source, cfg)
    del source
    future_path = STAGE.path("future_raw", cfg) if cfg.data.future_path else None
    future = future_rows(future_path, result.frame, cfg)
    # Quarantined series (data.on_bad_series: skip) are listed with their reasons; downstream
    # stages never see them.
    summary = summarize(result.frame) | {"quarantined": result.listing(cfg)}
    if cfg.data.covariates.future:
        summary["future_rows"] = future.height
    # Written only after validation passed: bad data leaves every earlier output as it was.
    io.write_atomic(STAGE.path("validated"), result.frame.write_parquet)
    io.write_atomic(STAGE.path("quarantined"), result.quarantine_table().write_parquet)
    io.write_atomic(STAGE.path("validated_future"), future.write_parquet)
    io.write_json(STAGE.path("metrics_ingest"), summary)
    return summary


def ui_artifacts(cfg: Config, header: str) -> None:
    from flows.ingest_artifact import quarantine_artifact

    quarantine_artifact(STAGE.path("metrics_ingest"), header)


def transient_source_error(task, task_run, state) -> bool:
    """Retry only when the source could not be read (missing, or the OS failed to read it: a
    mount or an upstream export that is not there yet); a malformed source, bad rows or bad
    params fail at once."""
    try:
        state.result()
    except (SourceUnavailable, OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


def task_options(cfg: Config) -> dict:
    o = cfg.orchestration
    return {
        "retries": o.source_retries,
        "retry_delay_seconds": [o.source_retry_delay_s * 2**i for i in range(o.source_retries)],
        "retry_condition_fn": transient_source_error,
    }


def source_modules(cfg: Config) -> tuple[str, ...]:
    """The data source modules this config may read with (all of them for `auto`)."""
    from tasks.ingest import sources

    chosen = sources.names() if cfg.data.source == "auto" else (cfg.data.source,)
    return tuple(f"tasks.ingest.sources.{name}" for name in chosen)


STAGE = Stage(
    name="ingest",
    run=run,
    reads=("raw",),
    optional=("future_raw",),
    writes=("validated", "validated_future", "quarantined", "metrics_ingest"),
    # The window geometry and the transform decide how much history a series needs.
    params=(
        "data",
        "forecast.horizon",
        "prepare.lookback",
        "prepare.validation_steps",
        "prepare.transform",
        "evaluate.n_windows",
        "evaluate.step",
    ),
    task_options=task_options,
    plugins=source_modules,
    ui_artifacts=ui_artifacts,
    description="read the raw source with polars, validate it with pandera",
)

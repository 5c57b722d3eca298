"""The forecasting pipeline as one Prefect flow: ingest -> prepare -> train -> evaluate -> publish.

Each stage is a Prefect task that calls the same runner `dvc repro` calls
(`flows.stages.<stage>.run`), in this one process: Prefect and TensorFlow are imported once
instead of five times. DVC stays the source of truth for what is up to date:

- before a stage, `dvc status STAGE` decides: a stage whose code, params and input hashes match
  dvc.lock (and whose outputs are present) is skipped, so an unchanged run only re-checks hashes
  and says it reused the last model;
- after a stage, `dvc commit -f STAGE` records the new hashes in dvc.lock, exactly as if
  `dvc repro` had run it, so `dvc status` is clean after a Prefect run.

Around the stages (production concerns, see README "Run it in production"):
- one run at a time per repository: an flock on .dvc/tmp (the deployment adds a server-side
  concurrency limit of 1, flows/deploy.py);
- ingest retries transient source failures with exponential back-off;
- artifacts for the UI (flows/artifacts.py); run names carry the data md5;
- with version=True (the deployment), a run that changed anything is pushed to the DVC remote
  and committed + tagged in git (tasks/versioning.py);
- failure/crash hooks emit a Prefect event and append to the run log.

Run it: `python -m flows.pipeline` (add `--force` to rerun every stage, `--version` to version).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.states import Completed

from flows.stages import STAGES, stage_module
from tasks import paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.errors import DataSourceError, PipelineError

FAILED_EVENT = "forecast.pipeline.failed"
COMPLETED_EVENT = "forecast.pipeline.completed"
LOCK_FILE = Path(".dvc/tmp/forecast-pipeline.lock")


def _repo(root: Path):
    from dvc.repo import Repo

    return Repo(str(root))


def stage_changed(stage: str, root: Path = Path(".")) -> bool:
    """True when DVC sees a change in the stage's deps, params, outputs or command."""
    with _repo(root) as repo:
        return bool(repo.status(targets=[stage]))


def record_stage(stage: str, root: Path = Path(".")) -> None:
    """Write the stage's current dep/out hashes to dvc.lock and its outputs to the DVC cache."""
    with _repo(root) as repo:
        repo.commit(stage, force=True)


def transient_source_error(task, task_run, state) -> bool:
    """Retry ingest only when the source could not be read (missing, unreadable: a mount or an
    upstream export that is not there yet); bad rows or bad params fail at once."""
    try:
        state.result()
    except (DataSourceError, OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


@task(name="stage", task_run_name="{stage}")
def run_stage(stage: str, params: str, force: bool = False) -> dict:
    logger = get_run_logger()
    if not force and not stage_changed(stage):
        logger.info("%s: unchanged since the last run (DVC hashes match dvc.lock): skipped", stage)
        return {"stage": stage, "skipped": True}
    cfg = load_config(params)
    started = time.perf_counter()
    module = stage_module(stage)
    if stage == "publish":
        from prefect.runtime import flow_run

        result = module.run(cfg, flow_run_id=flow_run.get_id())
    else:
        result = module.run(cfg)
    record_stage(stage)
    seconds = round(time.perf_counter() - started, 2)
    logger.info("%s: done in %.2f s", stage, seconds)
    return {"stage": stage, "skipped": False, "seconds": seconds, "result": result}


def stage_task(stage: str, cfg: Config):
    if stage != "ingest":
        return run_stage
    o = cfg.orchestration
    return run_stage.with_options(
        retries=o.source_retries,
        retry_delay_seconds=[o.source_retry_delay_s * 2**i for i in range(o.source_retries)],
        retry_condition_fn=transient_source_error,
    )


# ---------------------------------------------------------------- run name, lock, hooks
def _params_path(parameters: dict | None) -> str:
    return str((parameters or {}).get("params") or DEFAULT_PARAMS)


def data_version(cfg: Config) -> str:
    from tasks.lineage import data_md5

    return data_md5(cfg.data.path)


def run_name() -> str:
    """`data-<md5[:8] of the raw source>-<UTC time>`: which data a run saw, at a glance."""
    from prefect.runtime import flow_run

    try:
        md5 = data_version(load_config(_params_path(flow_run.parameters)))[:8]
    except Exception:  # a bad params file fails the run itself, with the reason
        md5 = "unknown"
    return f"data-{md5}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@contextlib.contextmanager
def repository_lock(logger, path: Path = LOCK_FILE) -> Iterator[None]:
    """One pipeline run per repository at a time (DVC has one repository lock; two runs would
    interleave stages). A second run waits here and says so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            logger.warning("another pipeline run holds the repository (%s): waiting for it", holder)
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield


def _run_log(parameters: dict | None) -> Path:
    try:
        return Path(load_config(_params_path(parameters)).orchestration.run_log)
    except Exception:
        return Path("logs/pipeline-runs.jsonl")


def record_outcome(flow, flow_run, state) -> None:
    """on_completion / on_failure / on_crashed hook: a Prefect event (an automation can notify
    on `forecast.pipeline.failed`) and one JSON line in the run log. The parameter names are
    part of the contract: the runner calls on_crashed hooks by keyword
    (flow=, flow_run=, state=)."""
    from prefect.events import emit_event

    failed = not state.is_completed()
    reason = state.message or state.name
    record = {
        "time": datetime.now(UTC).isoformat(),
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "state": state.name,
        "failed": failed,
        "reason": reason,
    }
    emit_event(
        event=FAILED_EVENT if failed else COMPLETED_EVENT,
        resource={
            "prefect.resource.id": f"forecast.pipeline.{flow_run.id}",
            "prefect.resource.name": flow_run.name,
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                "prefect.resource.role": "flow-run",
            }
        ],
        payload={"state": state.name, "reason": reason},
    )
    log = _run_log(flow_run.parameters)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


# ---------------------------------------------------------------- the flow
def _model_version() -> str | None:
    from tasks.io import md5_file

    return md5_file(paths.MODEL)[:12] if paths.MODEL.exists() else None


def _artifacts(stage: str, cfg: Config, header: str) -> None:
    from flows import artifacts

    if stage == "evaluate":
        artifacts.metrics_artifact(header)
    elif stage == "publish":
        export = Path(cfg.publish.export)
        artifacts.published_artifact(export)
        artifacts.chart_artifact(paths.VALIDATED, export, f"Forecast {header}")


@flow(
    name="forecast-pipeline",
    flow_run_name=run_name,
    on_completion=[record_outcome],
    on_failure=[record_outcome],
    on_crashed=[record_outcome],
)
def pipeline(params: str = str(DEFAULT_PARAMS), force: bool = False, version: bool = False):
    """Run the five stages in order; a failing stage stops the run and nothing after it runs."""
    logger = get_run_logger()
    cfg = load_config(params)  # bad params stop the run before any stage does work
    md5 = data_version(cfg)
    results = []
    with repository_lock(logger):
        for stage in STAGES:
            results.append(stage_task(stage, cfg)(stage, params, force))
            header = f"data {md5[:8]}, model {_model_version()}"
            _artifacts(stage, cfg, header)
        ran = [r["stage"] for r in results if not r["skipped"]]
        summary = {
            "data_md5": md5,
            "model_version": _model_version(),
            "ran": ran,
            "skipped": [r["stage"] for r in results if r["skipped"]],
            "reused_model": "train" not in ran,
            "stages": results,
            "version": None,
        }
        if not ran:
            message = (
                f"no input changed: reused model {summary['model_version']} and the published "
                "forecasts (every stage skipped on DVC hashes)"
            )
        else:
            model = "reused model" if summary["reused_model"] else "trained model"
            message = f"ran {', '.join(ran)}; {model} {summary['model_version']}"
        if version and cfg.orchestration.version_runs:
            if ran:
                summary["version"] = _version(cfg, summary)
                message += f"; versioned as {summary['version']['tag']}"
            else:
                message += "; nothing changed, no new version"
    logger.info(message)
    summary["message"] = message
    return Completed(message=message, data=summary)


def _version(cfg: Config, summary: dict) -> dict:
    from prefect.runtime import flow_run

    from flows.versioning import version_run

    gate = paths.METRICS_GATE
    record = {
        "flow_run_id": str(flow_run.get_id()),
        "flow_run_name": flow_run.get_name(),
        "data_md5": summary["data_md5"],
        "model_version": summary["model_version"],
        "ran": summary["ran"],
        "gate_passed": json.loads(gate.read_text()).get("passed") if gate.exists() else None,
    }
    title = f"forecast run {record['flow_run_name']}: model {summary['model_version']}"
    info = version_run(
        Path("."),
        remote=cfg.orchestration.remote,
        tag_prefix=cfg.orchestration.tag_prefix,
        data_path=cfg.data.path,
        title=title,
        summary=record,
    )
    get_run_logger().info(
        "versioned: commit %s, tag %s, %s file(s) pushed to DVC remote %r",
        info["commit"],
        info["tag"],
        info["pushed_files"],
        info["remote"],
    )
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    parser.add_argument("--force", action="store_true", help="rerun every stage")
    parser.add_argument(
        "--version", action="store_true", help="push to the DVC remote, git commit and tag the run"
    )
    args = parser.parse_args(argv)
    try:
        summary = pipeline(params=args.params, force=args.force, version=args.version)
    except PipelineError as err:
        print(f"pipeline failed: {err}", file=sys.stderr)
        return 2
    for r in summary["stages"]:
        state = "skipped (unchanged)" if r["skipped"] else f"ran in {r['seconds']} s"
        print(f"{r['stage']:>9}: {state}")
    print(summary["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The forecasting pipeline as one Prefect flow over the declared stages (flows/registry.py).

Each stage is a Prefect task that calls the stage's declared runner (the same one `dvc repro`
runs through `python -m flows.stages STAGE`), in this one process: Prefect and TensorFlow are
imported once instead of once per stage. This module names no stage: what runs, in which order,
with which Prefect options and UI artifacts, comes from the declarations (flows/stage.py).
DVC stays the source of truth for what is up to date:

- before a stage, `dvc status STAGE` decides: a stage whose code, params and input hashes match
  dvc.lock (and whose outputs are present) is skipped, so an unchanged run only re-checks hashes
  and says it reused the last model;
- after a stage, `dvc commit -f STAGE` records the new hashes in dvc.lock, exactly as if
  `dvc repro` had run it, so `dvc status` is clean after a Prefect run.

Around the stages (production concerns, see README "Operations"):
- one run at a time per repository, serialised with `dvc repro`, `dvc exp run` and rollback
  (flows/repolock.py; the deployment adds a server-side concurrency limit of 1, flows/deploy.py);
- a publish killed between its renames is rolled forward first (tasks/publishing/transaction.py);
- per-stage Prefect options from the declarations (the source read retries transient failures
  with exponential back-off);
- artifacts for the UI (flows/artifacts.py); run names carry the data md5;
- with version=True (the deployment), a run that changed anything is pushed to the DVC remote
  and committed + tagged in git (flows/versioning.py);
- failure/crash hooks emit a Prefect event and append to the run log.

Run it: `python -m flows.pipeline` (add `--force` to rerun every stage, `--version` to version).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.states import Completed

from flows import outcome
from flows.dvc import record_stage, stage_changed
from flows.registry import by_name, stages
from flows.repolock import repository_lock
from flows.report import write_run_report
from flows.stage import Stage, StageContext
from tasks import catalog
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.errors import PipelineError
from tasks.evaluation.distributed import check_reachable as check_engine

FAILED_EVENT = "forecast.pipeline.failed"
COMPLETED_EVENT = "forecast.pipeline.completed"


@task(name="stage", task_run_name="{name}")
def run_stage(name: str, params: str, force: bool = False) -> dict:
    logger = get_run_logger()
    if not force and not stage_changed(name):
        logger.info("%s: unchanged since the last run (DVC hashes match dvc.lock): skipped", name)
        return {"stage": name, "skipped": True}
    from prefect.runtime import flow_run

    stage = by_name(name)
    cfg = load_config(params)
    started = time.perf_counter()
    result = stage.run(cfg, StageContext(flow_run_id=flow_run.get_id()))
    record_stage(name)
    seconds = round(time.perf_counter() - started, 2)
    logger.info("%s: done in %.2f s", name, seconds)
    return {"stage": name, "skipped": False, "seconds": seconds, "result": result}


def stage_task(stage: Stage, cfg: Config):
    return run_stage.with_options(**stage.task_options(cfg)) if stage.task_options else run_stage


def params_inside_repository(params: str, root: Path | None = None) -> str:
    """The params file, if it lies inside the repository (symlinks resolved). A deployment run
    takes `params` as a parameter, and any local process can trigger one through the local API:
    it must not point the pipeline at a file elsewhere."""
    from tasks.errors import ConfigError

    root = (root or Path.cwd()).resolve()
    path = (root / params).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(
            f"params file {params!r} is outside the repository {root}: "
            "give a params file inside it (e.g. params.yaml)"
        )
    return params


def params_tracked_by_dvc(params: str, root: Path | None = None) -> str:
    """The params file, if it is the one DVC reads (symlinks resolved): dvc.yaml's stage params
    name keys of params.yaml, so `dvc status` decides what is up to date against params.yaml and
    `dvc commit` records its values. A run with another file would skip a stage whose keys
    changed only there (stale outputs reported as reused) and record params.yaml's values for
    outputs made from the other file's. Refused, naming the way that works."""
    from tasks.errors import ConfigError

    root = (root or Path.cwd()).resolve()
    if (root / params).resolve() != (root / DEFAULT_PARAMS).resolve():
        raise ConfigError(
            f"params file {params!r}: the pipeline runs only with {DEFAULT_PARAMS}, the file DVC "
            f"tracks (dvc.yaml's params), so that a changed key reruns exactly the stages that "
            f"read it; copy {params} over {DEFAULT_PARAMS} (git keeps the old one) or try values "
            "with `dvc exp run --set-param KEY=VALUE`"
        )
    return params


class StaleDvcYaml(PipelineError):
    """dvc.yaml no longer matches the stage declarations."""


def check_dvc_yaml(cfg: Config, path: Path = Path("dvc.yaml")) -> None:
    """Refuse to run on a dvc.yaml that disagrees with the declarations (a stage added, a
    publish target chosen, a module imported since it was generated): DVC would skip or rerun
    the wrong stages."""
    import yaml

    from flows.dvcgen import disagreements

    problems = disagreements(yaml.safe_load(path.read_text()) or {}, cfg)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; ... {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise StaleDvcYaml(
            f"{path} disagrees with the stage declarations ({shown}): run "
            "`python -m flows.dvcgen` and commit the result"
        )


# ---------------------------------------------------------------- run name, lock, hooks
def _params_path(parameters: dict | None) -> str:
    return str((parameters or {}).get("params") or DEFAULT_PARAMS)


def data_version(cfg: Config) -> str:
    from tasks.publishing.lineage import data_md5

    return data_md5(catalog.path("raw", cfg))


def run_name() -> str:
    """`data-<md5[:8] of the raw source>-<UTC time>`: which data a run saw, at a glance."""
    from prefect.runtime import flow_run

    try:
        md5 = data_version(load_config(_params_path(flow_run.parameters)))[:8]
    except Exception:  # a bad params file fails the run itself, with the reason
        md5 = "unknown"
    return f"data-{md5}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def recover_publish(logger) -> None:
    """A publish killed between its renames is completed before anything else runs, so DVC and
    the gate see one consistent published state (tasks/publishing/transaction.py)."""
    from tasks.publishing.transaction import recover

    done = recover(catalog.path("publish_journal"))
    if done:
        logger.warning("completed a publish killed between its renames: %s", ", ".join(done))


def _run_log(parameters: dict | None) -> Path:
    try:
        return catalog.path("run_log", load_config(_params_path(parameters)))
    except Exception:  # a bad params file: the default place, so the failure is still logged
        return Path(catalog.entry("run_log").path)


def record_outcome(flow, flow_run, state) -> None:
    """on_completion / on_failure / on_crashed hook: a Prefect event (an automation can notify
    on `forecast.pipeline.failed`) and one JSON line in the run log. The parameter names are
    part of the contract: the runner calls on_crashed hooks by keyword
    (flow=, flow_run=, state=)."""
    from prefect.events import emit_event

    from tasks.textfmt import MESSAGE_CHARS, clip

    failed = not state.is_completed()
    # Bounded: a message echoing user data must not push the event past Prefect's size limit,
    # and the run-log line below is written whatever happens to the event.
    reason = clip(state.message or state.name, MESSAGE_CHARS)
    record = {
        "time": datetime.now(UTC).isoformat(),
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "state": state.name,
        "failed": failed,
        "reason": reason,
    }
    try:
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
    except Exception as err:  # the record below still says what happened
        from prefect.logging import get_logger

        get_logger("forecast").warning("could not emit %s: %s", FAILED_EVENT, clip(err, 500))
    log = _run_log(flow_run.parameters)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


# ---------------------------------------------------------------- the flow
def _model_version() -> str | None:
    """The shipped model's version (`model_full`: what publish forecasts with, the store's
    lineage `model_version`); the train stage's model before evaluate ever refit one."""
    from tasks.io import md5_file

    for key in ("model_full", "model"):
        model = catalog.path(key)
        if model.exists():
            return md5_file(model)[:12]
    return None


def _ui_artifacts(stage, cfg, header: str, logger) -> None:
    """The stage's Prefect artifacts; one that fails (a chart it cannot draw) is a warning: the
    stage's outputs, published or not, are what the run is about."""
    try:
        stage.ui_artifacts(cfg, header)
    except Exception as err:
        logger.warning(
            "%s: its Prefect artifacts could not be made (%s: %s); the stage's outputs stand",
            stage.name,
            type(err).__name__,
            str(err)[:300],
        )


@flow(
    name="forecast-pipeline",
    flow_run_name=run_name,
    on_completion=[record_outcome, write_run_report],
    on_failure=[record_outcome, write_run_report],
    on_crashed=[record_outcome, write_run_report],
)
def pipeline(
    params: str = str(DEFAULT_PARAMS),
    force: bool = False,
    version: bool = False,
    push_git: str | None = None,
):
    """Run the declared stages in order; a failing stage stops the run and nothing after it runs.
    `push_git`: a git remote the versioned run's tag is pushed to (runs on a Prefect worker's
    clone, flows/workpool.py)."""
    logger = get_run_logger()
    outcome.start_run()  # the progress the end hooks' run report reads (flows/outcome.py)
    params = params_tracked_by_dvc(params_inside_repository(params))
    cfg = load_config(params)  # bad params stop the run before any stage does work
    check_dvc_yaml(cfg)
    check_engine(cfg)  # a Dask scheduler that does not answer: stop before any stage
    md5 = data_version(cfg)
    results = []
    with repository_lock("pipeline run", logger=logger):
        recover_publish(logger)
        for stage in stages():
            outcome.stage_started(stage.name)
            results.append(stage_task(stage, cfg)(stage.name, params, force))
            outcome.stage_done(stage.name)
            if stage.ui_artifacts:
                _ui_artifacts(stage, cfg, f"data {md5[:8]}, model {_model_version()}", logger)
        ran = [r["stage"] for r in results if not r["skipped"]]
        wrote = {key for name in ran for key in by_name(name).writes}
        summary = {
            "data_md5": md5,
            "model_version": _model_version(),
            "ran": ran,
            "skipped": [r["stage"] for r in results if r["skipped"]],
            "reused_model": "model" not in wrote,
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
            from flows.versioning import unversioned_outputs

            # Not only this run's changes: whatever was published since the last version (a
            # manual run, a rollback --no-version) and no run has versioned yet.
            pending = [] if ran else unversioned_outputs(Path("."), cfg.orchestration.tag_prefix)
            if ran or pending:
                summary["version"] = _version(cfg, summary, push_git)
                message += f"; versioned as {summary['version']['tag']}"
                if pending:
                    message += f" (unversioned since the last version: {', '.join(pending)})"
            else:
                message += "; nothing changed since the last version, no new version"
    logger.info(message)
    summary["message"] = message
    return Completed(message=message, data=summary)


def _version(cfg: Config, summary: dict, push_git: str | None = None) -> dict:
    from prefect.runtime import flow_run

    from flows.versioning import push_tag, version_run

    gate = catalog.path("metrics_gate")
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
        data_path=str(catalog.path("raw", cfg)),
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
    if push_git:
        push_tag(Path("."), push_git, info["tag"])
        get_run_logger().info("pushed tag %s to git remote %r", info["tag"], push_git)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    parser.add_argument("--force", action="store_true", help="rerun every stage")
    parser.add_argument(
        "--version", action="store_true", help="push to the DVC remote, git commit and tag the run"
    )
    args = parser.parse_args(argv)
    from flows.ephemeral import prefect_api
    from tasks.publishing.transaction import user_error

    try:
        from tasks.ingest.preflight import check_header

        # Bad params or a source whose columns do not fit: before a Prefect server starts.
        check_header(load_config(args.params))
        # Without a Prefect server configured: a temporary one that dies with this process.
        with prefect_api():
            summary = pipeline(params=args.params, force=args.force, version=args.version)
    except Exception as err:
        message = user_error(err)  # bad input, params or disk: one line, not a traceback
        if message is None:
            raise
        print(f"pipeline failed: {message}", file=sys.stderr)
        return 2
    for r in summary["stages"]:
        state = "skipped (unchanged)" if r["skipped"] else f"ran in {r['seconds']} s"
        print(f"{r['stage']:>9}: {state}")
    print(summary["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The forecasting pipeline as one Prefect flow: ingest -> prepare -> train -> evaluate -> publish.

Each stage is a Prefect task that calls the same runner `dvc repro` calls
(`flows.stages.<stage>.run`), in this one process: Prefect and TensorFlow are imported once
instead of five times. DVC stays the source of truth for what is up to date:

- before a stage, `dvc status STAGE` decides: a stage whose code, params and input hashes match
  dvc.lock (and whose outputs are present) is skipped, so an unchanged run only re-checks hashes;
- after a stage, `dvc commit -f STAGE` records the new hashes in dvc.lock, exactly as if
  `dvc repro` had run it, so `dvc status` is clean after a Prefect run.

Run it: `python -m flows.pipeline` (add `--force` to rerun every stage).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.stages import STAGES, stage_module
from tasks.config import DEFAULT_PARAMS, load_config
from tasks.errors import PipelineError


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
    logger.info("%s: done in %.2f s: %s", stage, seconds, result)
    return {"stage": stage, "skipped": False, "seconds": seconds, "result": result}


@flow(name="forecast-pipeline")
def pipeline(params: str = str(DEFAULT_PARAMS), force: bool = False) -> list[dict]:
    """Run the five stages in order; a failing stage stops the run and nothing after it runs."""
    load_config(params)  # bad params stop the run before any stage does work
    return [run_stage(stage, params, force) for stage in STAGES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    parser.add_argument("--force", action="store_true", help="rerun every stage")
    args = parser.parse_args(argv)
    try:
        results = pipeline(params=args.params, force=args.force)
    except PipelineError as err:
        print(f"pipeline failed: {err}", file=sys.stderr)
        return 2
    for r in results:
        state = "skipped (unchanged)" if r["skipped"] else f"ran in {r['seconds']} s"
        print(f"{r['stage']:>9}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One entry point per stage: `python -m flows.stages STAGE` (what dvc.yaml runs).

Each stage lives in its own module (`flows.stages.ingest`, ...) with a plain runner
`run(cfg) -> dict` that holds the stage's file I/O around the pure functions in `tasks`, and a
Prefect flow around that runner. dvc.yaml lists each stage module as a dependency of its stage
only, so editing one stage reruns that stage and what follows it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from tasks.config import DEFAULT_PARAMS, load_config
from tasks.errors import PipelineError

STAGES = ("ingest", "prepare", "train", "evaluate", "publish")

log = logging.getLogger("forecast")


def stage_module(stage: str):
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    return importlib.import_module(f"flows.stages.{stage}")


def use_prefect() -> bool:
    """Run a stage as a Prefect flow when a Prefect API is configured.

    Without one, Prefect would start a throw-away server in every stage process (14-22 s each,
    shared/README.md) whose runs nobody can see; the plain runner does the same work.
    FORECAST_PREFECT=always|never overrides the choice.
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
    try:
        cfg = load_config(args.params)  # bad params stop here, before any work
        module = stage_module(args.stage)
        result = module.flow(params=args.params) if use_prefect() else module.run(cfg)
    except PipelineError as err:
        print(f"{args.stage} failed: {err}", file=sys.stderr)
        return 2
    log.info("%s done: %s", args.stage, result)
    return 0

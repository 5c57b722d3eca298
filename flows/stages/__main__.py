"""`python -m flows.stages STAGE [--params FILE]`: run one stage (what each dvc.yaml stage runs).

The stage is found by its module name, `flows.stages.<STAGE>`, and run through its declaration:
as a Prefect flow when a Prefect API is configured, else its plain runner. Without an API Prefect
would start a throw-away server in every stage process (14-22 s each, shared/README.md) whose
runs nobody can see; the plain runner does the same work. FORECAST_PREFECT=always|never
overrides the choice (`always` without a server: a temporary one that dies with this process,
flows/ephemeral.py).

It holds the repository lock while the stage runs (flows/repolock.py), unless the command that
started it holds it: `dvc repro` / `dvc exp run` (DVC's lock, DVC_STAGE set) or a pipeline run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from flows.repolock import repository_lock
from flows.stage import Stage, StageContext
from tasks import plugins
from tasks.config import DEFAULT_PARAMS, load_config
from tasks.publishing.transaction import user_error
from tasks.textfmt import MESSAGE_CHARS, clip

log = logging.getLogger("forecast")


def find_stage(name: str) -> Stage:
    known = plugins.names("flows.stages")  # one module per stage, found without importing it
    if name not in known:
        raise SystemExit(f"unknown stage {name!r}; one of {', '.join(known)}")
    stage = getattr(importlib.import_module(f"flows.stages.{name}"), "STAGE", None)
    if not isinstance(stage, Stage):
        raise SystemExit(f"flows/stages/{name}.py declares no `STAGE = Stage(...)`")
    return stage


def use_prefect() -> bool:
    mode = os.environ.get("FORECAST_PREFECT", "auto")
    if mode in ("always", "never"):
        return mode == "always"
    return bool(os.environ.get("PREFECT_API_URL"))


def as_flow(stage: Stage):
    """The stage as a Prefect flow named after it (one flow run per `dvc repro` stage)."""
    from prefect import flow
    from prefect.runtime import flow_run

    @flow(name=stage.name)
    def stage_flow(params: str = str(DEFAULT_PARAMS)) -> dict:
        return stage.run(load_config(params), StageContext(flow_run_id=str(flow_run.get_id())))

    return stage_flow


def run(stage: Stage, params: str) -> dict:
    cfg = load_config(params)  # bad params stop here, before any work
    # The repository lock, unless whoever started this holds it: `dvc repro` (DVC's lock) or a
    # pipeline run (flows/repolock.py).
    with repository_lock(f"stage {stage.name}", logger=log):
        if not use_prefect():
            return stage.run(cfg, StageContext())
        from flows.ephemeral import prefect_api

        with prefect_api():  # FORECAST_PREFECT=always without a server: one tied to us
            return as_flow(stage)(params=params)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.stages", description=__doc__)
    parser.add_argument("stage")
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    args = parser.parse_args(argv)
    stage = find_stage(args.stage)
    try:
        result = run(stage, args.params)
    except Exception as err:
        message = user_error(err)  # bad input, params or disk: one line, not a traceback
        if message is None:
            raise
        print(f"{stage.name} failed: {message}", file=sys.stderr)
        return 2
    log.info("%s", done_message(stage.name, result))
    return 0


def done_message(name: str, result: object) -> str:
    """The line a finished stage logs, bounded: evaluate's result holds per-series maps (the
    champion's `trained_through`), a megabyte-long line at 10,000 series; the stage's metrics
    files hold it whole."""
    prefix = f"{name} done: "
    return prefix + clip(result, MESSAGE_CHARS - len(prefix) - 32)  # 32: clip's "(+N chars)"


if __name__ == "__main__":
    # Logging is configured here, for the command line only: main() is also called in-process.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(main())

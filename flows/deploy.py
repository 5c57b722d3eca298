"""Serve the pipeline as a scheduled Prefect deployment: `python -m flows.deploy`.

Registers `forecast-pipeline/<orchestration.deployment>` on the Prefect server named by
PREFECT_API_URL, with the cron schedule of params.yaml (`orchestration.cron`, `.timezone`), and
executes its runs in this long-lived process (`flow.serve`-style runner: no work pool, no worker,
no image; the runs use this checkout, its venv and its DVC cache). Trigger a run by hand with
`prefect deployment run forecast-pipeline/scheduled`.

One run at a time: the deployment carries a concurrency limit of 1 enforced by the server; a run
that arrives while one is running waits in `AwaitingConcurrencySlot` (`orchestration.on_overlap:
enqueue`) or is cancelled with that reason (`cancel`). Inside the flow an flock on the repository
backs this up for runs started outside the deployment (`python -m flows.pipeline`).

Runs of the deployment version themselves (parameter version=True): see flows/versioning.py.
"""

from __future__ import annotations

import argparse
import os
import sys

from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.errors import PipelineError

# `forecast serve --help`: for users (the module docstring is for developers).
HELP = """Serve the pipeline as a scheduled Prefect deployment, from this process and checkout.

    prefect server start --host 127.0.0.1          # in one shell
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    forecast serve [--cron CRON]                   # runs on orchestration.cron

One run at a time (orchestration.on_overlap: enqueue or cancel). A run now, besides the
schedule: `prefect deployment run forecast-pipeline/scheduled`.
"""


def build_deployment(cfg: Config, params: str, cron: str | None = None):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.pipeline import pipeline

    o = cfg.orchestration
    strategy = {
        "enqueue": ConcurrencyLimitStrategy.ENQUEUE,
        "cancel": ConcurrencyLimitStrategy.CANCEL_NEW,
    }[o.on_overlap]
    return pipeline.to_deployment(
        name=o.deployment,
        schedules=[Cron(cron or o.cron, timezone=o.timezone)],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=strategy),
        parameters={"params": params, "force": False, "version": True},
        description="Scheduled forecast run: DVC-skips unchanged stages, versions what changed.",
        tags=["forecast", "production"],
        # Import `flows.pipeline` (the installed project) rather than loading the file by path.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def main(argv: list[str] | None = None, prog: str = "python -m flows.deploy") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=HELP if prog.startswith("forecast") else __doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)"
    )
    parser.add_argument("--cron", help="override orchestration.cron (e.g. for a trial)")
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            print(
                "PREFECT_API_URL is not set: start a server (./run.sh prefect server start "
                "--host 127.0.0.1) and export PREFECT_API_URL=http://127.0.0.1:4200/api",
                file=sys.stderr,
            )
            return 2
    from flows.pipeline import params_tracked_by_dvc

    try:
        cfg = load_config(args.params)
        params_tracked_by_dvc(args.params)  # its runs would ignore another file's changes
    except PipelineError as err:
        print(f"deploy failed: {err}", file=sys.stderr)
        return 2
    from prefect import serve

    deployment = build_deployment(cfg, args.params, args.cron)
    serve(deployment)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Flow runs on Prefect workers: a process work pool and a deployment whose runs a worker started
on another machine picks up (`forecast serve` stays the one-machine mode).

    forecast deploy-pool --pool forecast --repository git@host:team/forecast.git [--commit SHA]
    forecast deploy-pool prepare     # the pull step, run by the worker in its fresh clone

`deploy-pool` (from a checkout whose commit the git remote holds) creates the work pool (type
process) when missing and registers `forecast-pipeline/<orchestration.deployment>-pool` on the
server of PREFECT_API_URL, with the cron schedule of params.yaml (`--no-schedule`: runs only when
triggered) and one run at a time, as `forecast serve`'s. Each run, on whichever worker of the pool
takes it (`./run.sh prefect worker start --pool forecast`, from any checkout whose locked
environment matches), goes:
  1. `git_clone` of `--repository` at `--commit` (default: this checkout's HEAD) into the run's
     directory: the code of the deployment, never the worker's own checkout;
  2. `prepare` in that clone: points the DVC remote `orchestration.remote` at
     $FORECAST_DVC_REMOTE and the DVC cache at $FORECAST_DVC_CACHE when the worker's environment
     sets them (a worker machine's own paths; nothing is committed), then `dvc pull
     --allow-missing`: data and models from the DVC remote (an output the remote lacks is
     rebuilt by its stage);
  3. the pipeline flow in the clone (module path `flows.pipeline:pipeline`, imported from the
     clone), versioned: `dvc push` of its outputs, a git commit and tag, and the tag pushed to the
     clone's `origin` (parameter push_git), so every other clone sees the run with
     `git fetch --tags` and `dvc pull` (docs/scale.md "What runs where").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys

from tasks.config import DEFAULT_PARAMS, load_config
from tasks.errors import PipelineError

FLOW_NAME = "forecast-pipeline"
ENTRYPOINT = "flows.pipeline:pipeline"  # imported from the clone: the step sets the directory


def pull_steps(repository: str, commit: str, params: str) -> list[dict]:
    """The steps a worker runs before the flow, in the run's own directory."""
    clone = "{{ clone.directory }}"
    prepare = f"python -m flows.workpool prepare --params {params}"
    return [
        {
            "prefect.deployments.steps.git_clone": {
                "id": "clone",
                "repository": repository,
                "commit_sha": commit,
            }
        },
        {
            "prefect.deployments.steps.run_shell_script": {
                "id": "prepare",
                "script": prepare,
                "directory": clone,
                "stream_output": True,
            }
        },
        {"prefect.deployments.steps.set_working_directory": {"directory": clone}},
    ]


def head(root: str = ".") -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PipelineError(f"not a git checkout: {proc.stderr.strip()}")
    return proc.stdout.strip()


def deploy(
    pool: str, repository: str, commit: str, params: str, schedule: bool = True
) -> tuple[str, str]:
    """Create the process work pool (when missing) and the deployment; (deployment name, id)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.utilities.callables import parameter_schema

    from flows.pipeline import pipeline

    cfg = load_config(params)
    o = cfg.orchestration
    name = f"{o.deployment}-pool"
    strategy = {
        "enqueue": ConcurrencyLimitStrategy.ENQUEUE,
        "cancel": ConcurrencyLimitStrategy.CANCEL_NEW,
    }[o.on_overlap]
    schedules = (
        [DeploymentScheduleCreate(schedule=CronSchedule(cron=o.cron, timezone=o.timezone))]
        if schedule
        else []
    )
    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectAlreadyExists):  # a pool the team made: kept as it is
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        flow_id = client.create_flow_from_name(FLOW_NAME)
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name=name,
            work_pool_name=pool,
            entrypoint=ENTRYPOINT,
            pull_steps=pull_steps(repository, commit, params),
            parameters={"params": params, "force": False, "version": True, "push_git": "origin"},
            parameter_openapi_schema=parameter_schema(pipeline).model_dump_for_openapi(),
            schedules=schedules,
            concurrency_limit=1,
            concurrency_options=ConcurrencyOptions(collision_strategy=strategy),
            description=f"Forecast run on a worker of pool {pool!r}: code at {commit[:12]} from "
            "git, data and models from the DVC remote; versioned and pushed back.",
            tags=["forecast", "production", "work-pool"],
            version=commit[:12],
        )
    return f"{FLOW_NAME}/{name}", str(deployment_id)


def _dvc(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PipelineError(f"dvc {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout}")
    if proc.stdout.strip():
        print(proc.stdout.strip())


def prepare(params: str) -> None:
    """In the worker's clone: this machine's DVC remote and cache, then the data and models."""
    remote = load_config(params).orchestration.remote
    if url := os.environ.get("FORECAST_DVC_REMOTE"):
        _dvc(["remote", "add", "--local", "--force", remote, url])
    if cache := os.environ.get("FORECAST_DVC_CACHE"):
        _dvc(["cache", "dir", "--local", cache])
    _dvc(["pull", "--allow-missing", "--remote", remote])


def main(argv: list[str] | None = None, prog: str = "python -m flows.workpool") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", nargs="?", choices=["deploy", "prepare"], default="deploy")
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    parser.add_argument("--pool", default="forecast", help="the process work pool")
    parser.add_argument("--repository", help="git URL the workers clone (deploy)")
    parser.add_argument("--commit", help="the commit the runs use (default: HEAD here)")
    parser.add_argument("--no-schedule", action="store_true", help="runs only when triggered")
    args = parser.parse_args(argv)
    try:
        if args.action == "prepare":
            prepare(args.params)
            return 0
        if not args.repository:
            parser.error("deploy needs --repository (the git URL the workers clone)")
        if not os.environ.get("PREFECT_API_URL"):
            raise PipelineError(
                "PREFECT_API_URL is not set: the workers and this command share one server"
            )
        name, deployment_id = deploy(
            args.pool, args.repository, args.commit or head(), args.params, not args.no_schedule
        )
    except PipelineError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    print(f"deployment {name} ({deployment_id}) on work pool {args.pool!r}")
    print(f"start a worker: ./run.sh prefect worker start --pool {args.pool}")
    print(f"run it now:     ./run.sh prefect deployment run {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

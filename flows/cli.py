"""`forecast`: one command for everything a user does with the pipeline.

    forecast pipeline [--force] [--version]   run the six stages as one Prefect flow
    forecast stage STAGE                      run one stage (what `dvc repro` runs)
    forecast serve [--cron CRON]              serve the scheduled Prefect deployment
    forecast deploy-pool --repository URL     the deployment for Prefect workers (a work pool)
    forecast runs list|restore|rollback       versioned runs: list, restore outputs, roll back
    forecast published [--runs] [--csv PATH]  the published forecasts and their run
    forecast monitor [--series] [--json]      realized accuracy of published runs vs backtest
    forecast report [--series ID ...]         write reports/run.html (metrics, gate, charts)
    forecast export [--quantize]              the shipped model as TFLite, checked against Keras
    forecast search --grid K=V1,V2 --metric M an experiment grid (DVC experiments)
    forecast multiworker --workers N          train under MultiWorkerMirroredStrategy

Flags mean the same everywhere: `--params FILE` (default params.yaml) wherever a command reads
params; `--json` prints one JSON document on stdout instead of text (logs go to stderr).
`forecast COMMAND --help` describes each.

Exit codes: 0 ok; 2 bad input or params (the message names the file, key or value); 3 the
evaluation gate refused to publish (the published forecasts are unchanged); 1 anything
unexpected (a traceback follows). A command's own documented codes are kept (`export`: 1 when
the TFLite model differs from Keras beyond --tolerance).

Why argparse: every module already has an argparse parser behind its `python -m` entry point
(dvc.yaml runs `python -m flows.stages STAGE`), and those must keep working unchanged. This
command delegates to those modules (`published`, `export`, `search`, `serve` and `multiworker`
hand their arguments to the module's own parser, so the flags are declared once) and calls the
pipeline's and the stages' functions directly where it adds `--json` and exit code 3. Click or
typer (both in uv.lock through Prefect) would have meant declaring every flag a second time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tasks.config import DEFAULT_PARAMS

OK, UNEXPECTED, BAD_INPUT, GATE_REFUSED = 0, 1, 2, 3
PROG = "forecast"


def _print_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True, default=str))


def _params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)"
    )


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """With --json, stdout holds only the JSON document: while the work runs, whatever it prints
    (DVC's "Updating lock file", a worker process's output) goes to stderr, at the file
    descriptor level so child processes are covered too."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# ---------------------------------------------------------------- commands run here
def cmd_pipeline(args: argparse.Namespace) -> int:
    from tasks.config import load_config

    cfg = load_config(args.params)  # bad params: exit 2 before Prefect starts
    from flows.pipeline import params_tracked_by_dvc
    from tasks.ingest.preflight import check_header

    params_tracked_by_dvc(args.params)  # only the params file DVC tracks
    check_header(cfg)  # the source's columns vs data.columns: exit 2 before Prefect starts
    if cfg.publish.url:  # an unreachable store: exit 2 before any stage works
        from tasks.publishing.db import check_reachable, from_config

        check_reachable(from_config(cfg))
    if cfg.execution.engine == "dask":  # an unreachable Dask scheduler: exit 2 likewise
        from tasks.evaluation.distributed import check_reachable as check_scheduler

        check_scheduler(cfg)
    from flows.ephemeral import prefect_api
    from flows.pipeline import pipeline

    # Without PREFECT_API_URL: a temporary server tied to this process, waited for while it
    # works (Prefect's own 20 s start-up limit failed the quick start on a busy machine).
    try:
        with _stdout_to_stderr(args.json), prefect_api():
            summary = pipeline(params=args.params, force=args.force, version=args.version)
    except Exception:
        _print_progress()  # the stage summary on every exit code, on stderr (stdout: --json)
        raise
    if args.json:
        _print_json(summary)
        return OK
    for r in summary["stages"]:
        state = "skipped (unchanged)" if r["skipped"] else f"ran in {r['seconds']} s"
        print(f"{r['stage']:>9}: {state}")
    print(summary["message"])
    return OK


def _print_progress() -> None:
    """Which stages got done before the run stopped, which one stopped it, which never ran."""
    from flows.outcome import PROGRESS
    from flows.registry import stages

    done, current = PROGRESS.get("done") or [], PROGRESS.get("current")
    for stage in stages():
        if stage.name in done:
            state = "done (ran, or unchanged)"
        elif stage.name == current:
            state = "FAILED (the reason follows)"
        else:
            state = "not run"
        print(f"{stage.name:>9}: {state}", file=sys.stderr)


def cmd_stage(args: argparse.Namespace) -> int:
    from flows import report
    from flows.stage import StageContext
    from flows.stages.__main__ import as_flow, find_stage, use_prefect
    from tasks.config import load_config

    try:
        stage = find_stage(args.stage)
    except SystemExit as err:  # the runner's "unknown stage ..." message
        raise BadInput(str(err)) from None
    cfg = load_config(args.params)  # bad params stop here, before any work
    run = as_flow(stage) if use_prefect() else None  # the runner's choice (FORECAST_PREFECT)
    try:
        with _stdout_to_stderr(args.json):
            result = run(params=args.params) if run else stage.run(cfg, StageContext())
    finally:  # also when the gate refused: the report says why
        if report.INPUTS & set(stage.outputs(cfg)):
            report.write_report_safely(cfg)
    if args.json:
        _print_json({"stage": stage.name, "result": result})
    else:
        print(f"{stage.name} done")
    return OK


def cmd_runs(args: argparse.Namespace) -> int:
    from flows import runs

    if args.runs_command == "list" and args.json:
        from flows.versioning import list_runs
        from tasks.config import load_config

        prefix = load_config(args.params).orchestration.tag_prefix
        _print_json(list_runs(Path("."), prefix))
        return OK
    argv = ["--params", args.params, args.runs_command]
    if args.runs_command == "restore":
        argv += [args.run, "--out", str(args.out)]
    elif args.runs_command == "rollback":
        argv += [args.run, *(["--no-version"] if args.no_version else [])]
    return runs.main(argv)


def cmd_report(args: argparse.Namespace) -> int:
    from flows.report import write_report
    from tasks.config import load_config

    cfg = load_config(args.params)
    out, data = write_report(cfg, args.out, args.series, args.top)
    if args.artifact:
        _chart_artifact(cfg, data.series_shown)
    if args.json:
        _print_json({"report": str(out), "series": data.series_shown,
                     "charts": [c.title for c in data.charts], "not_shown": data.notes,
                     "gate_passed": (data.gate or {}).get("passed")})  # fmt: skip
    else:
        print(f"wrote {out}: {len(data.charts)} charts, series {', '.join(data.series_shown)}")
    return OK


def _chart_artifact(cfg, series: list[str]) -> None:
    from flows import artifacts
    from tasks import catalog

    if not os.environ.get("PREFECT_API_URL"):
        raise BadInput("--artifact needs a Prefect server: export PREFECT_API_URL=...")
    artifacts.chart_artifact(
        catalog.path("validated"), catalog.path("export", cfg), "Forecast", series or None
    )


# ---------------------------------------------------------------- commands delegated
@contextlib.contextmanager
def _argv0(prog: str) -> Iterator[None]:
    """A module whose parser takes its name from sys.argv[0] (argparse's default) then says
    `forecast multiworker` in its usage line instead of `forecast`."""
    saved = sys.argv[0]
    sys.argv[0] = prog
    try:
        yield
    finally:
        sys.argv[0] = saved


def _published(argv: list[str]) -> int:
    from flows import published

    return published.main(argv, prog=f"{PROG} published")


def _monitoring(argv: list[str]) -> int:
    from flows import monitoring

    return monitoring.main(argv, prog=f"{PROG} monitor")


def _export(argv: list[str]) -> int:
    from flows import export

    return export.main(argv, prog=f"{PROG} export")


def _search(argv: list[str]) -> int:
    from flows import search

    return search.main(argv, prog=f"{PROG} search")


def _serve(argv: list[str]) -> int:
    from flows import deploy

    return deploy.main(argv, prog=f"{PROG} serve")


def _deploy_pool(argv: list[str]) -> int:
    from flows import workpool

    return workpool.main(argv, prog=f"{PROG} deploy-pool")


def _multiworker(argv: list[str]) -> int:
    from flows import multiworker

    with _argv0(f"{PROG} multiworker"):
        return multiworker.main(argv)


# name -> (one-line help, handler given the remaining arguments)
DELEGATED: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "serve": ("serve the pipeline as the scheduled Prefect deployment (flows.deploy)", _serve),
    "deploy-pool": (
        "register the deployment that Prefect workers of a work pool run (flows.workpool)",
        _deploy_pool,
    ),
    "published": ("show or export the published forecasts and their run", _published),
    "monitor": ("realized accuracy of the published runs vs their backtest", _monitoring),
    "export": ("export the shipped model to TFLite and check it against Keras", _export),
    "search": ("run an experiment grid as DVC experiments, apply the best", _search),
    "multiworker": ("train under MultiWorkerMirroredStrategy (several processes)", _multiworker),
}


class BadInput(Exception):
    """A usage error found after parsing (unknown stage, no Prefect server): exit 2."""


def build_parser() -> argparse.ArgumentParser:
    from tasks import plugins

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\nWhy argparse")[0],  # the rest is for developers
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("pipeline", help="run the six stages as one Prefect flow (DVC-skipped)")
    _params(p)
    p.add_argument("--force", action="store_true", help="rerun every stage")
    p.add_argument("--version", action="store_true", help="push to the DVC remote, commit, tag")
    _json(p)
    p.set_defaults(handler=cmd_pipeline)

    stages = plugins.names("flows.stages")
    p = sub.add_parser("stage", help="run one stage (what dvc.yaml runs)")
    p.add_argument("stage", metavar="STAGE", help=f"one of {', '.join(stages)}")
    _params(p)
    _json(p)
    p.set_defaults(handler=cmd_stage)

    p = sub.add_parser("runs", help="versioned runs: list, restore, roll back")
    runs = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    r = runs.add_parser("list", help="versioned runs, newest first")
    _params(r)
    _json(r)
    r = runs.add_parser("restore", help="write a run's DVC outputs under --out")
    _params(r)
    r.add_argument("run", help="a tag, latest, previous or a commit prefix")
    r.add_argument("--out", required=True, type=Path)
    r = runs.add_parser("rollback", help="make a run's forecasts the published ones again")
    _params(r)
    r.add_argument("run", help="a tag, latest, previous or a commit prefix")
    r.add_argument("--no-version", action="store_true", help="do not commit/tag/push")
    p.set_defaults(handler=cmd_runs, json=False)

    p = sub.add_parser("report", help="write the HTML run report (metrics, gate, charts)")
    _params(p)
    p.add_argument("--series", nargs="+", metavar="ID", help="series to chart (default: largest)")
    p.add_argument("--top", type=int, default=None, help="how many largest series (default 4)")
    p.add_argument("--out", type=Path, default=None, help="default: reports/run.html")
    p.add_argument(
        "--artifact", action="store_true", help="also send the chart to Prefect (forecast-chart)"
    )
    _json(p)
    p.set_defaults(handler=cmd_report)

    for name, (text, _) in DELEGATED.items():
        # Parsed by the module itself: `forecast NAME --help` shows its options.
        sub.add_parser(name, help=text, add_help=False)
    return parser


def dispatch(argv: list[str]) -> int:
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][1](argv[1:])
    args = build_parser().parse_args(argv)
    return args.handler(args)


def main(argv: list[str] | None = None) -> int:
    from tasks.errors import GateFailed, PipelineError

    argv = sys.argv[1:] if argv is None else argv
    # The project's own log lines (logger "forecast") at INFO, on stderr; other libraries' only
    # from WARNING (httpx would log every request to the Prefect API).
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("forecast").setLevel(logging.INFO)
    try:
        return dispatch(argv)
    except GateFailed as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return GATE_REFUSED
    except (PipelineError, BadInput, FileNotFoundError) as err:
        if hasattr(err, "block"):  # what, where, fix apart (tasks.errors.SourceMismatch)
            print(f"{PROG}: bad input, nothing was run (exit {BAD_INPUT})", file=sys.stderr)
            print(err.block(), file=sys.stderr)
        else:
            print(f"{PROG}: {err}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `forecast ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return UNEXPECTED
    except Exception:
        import traceback

        traceback.print_exc()
        print(f"{PROG}: unexpected error (exit {UNEXPECTED}): the traceback above", file=sys.stderr)
        return UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())

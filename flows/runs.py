"""Past versioned runs: list them, restore one's artifacts, roll the published forecasts back.

  python -m flows.runs list                             newest first: tag, data, model, gate
  python -m flows.runs restore RUN --out DIR            that run's data, model, forecasts, metrics
  python -m flows.runs rollback RUN                     publish that run's forecasts again

RUN is a tag (`forecast-run/...`, with or without the prefix), `latest`, `previous`, or a commit
prefix. Restore reads from the local DVC cache, else from the DVC remote; it writes only under
DIR. Rollback re-publishes through the store's atomic publish (the earlier run becomes the
current one; history is kept), records the publish stage in dvc.lock so the next scheduled run
does not undo it, and versions the rollback like a run (unless --no-version).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from flows.repolock import repository_lock
from flows.versioning import list_runs, resolve_run, restore, rollback, version_run
from tasks.config import DEFAULT_PARAMS, load_config
from tasks.publishing.transaction import user_error


def _list(root: Path, prefix: str) -> int:
    runs = list_runs(root, prefix)
    if not runs:
        print(f"no versioned runs yet (no git tags under {prefix}/)")
        return 0
    print(f"{'tag':<50} {'commit':<10} {'data':<8} {'model':<12} {'gate':<6} flow run")
    for r in runs:
        gate = {True: "passed", False: "failed"}.get(r.get("gate_passed"), "-")
        print(
            f"{r['tag']:<50} {r['commit'][:10]:<10} {str(r.get('data_md5', '-'))[:8]:<8} "
            f"{str(r.get('model_version', '-')):<12} {gate:<6} {r.get('flow_run_name', '-')}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="versioned runs, newest first")
    p_restore = sub.add_parser("restore", help="write a run's DVC outputs under --out")
    p_restore.add_argument("run")
    p_restore.add_argument("--out", required=True, type=Path)
    p_roll = sub.add_parser("rollback", help="make a run's forecasts the published ones again")
    p_roll.add_argument("run")
    p_roll.add_argument("--no-version", action="store_true", help="do not commit/tag/push")
    args = parser.parse_args(argv)

    root = Path(".")
    try:
        cfg = load_config(args.params)
        prefix = cfg.orchestration.tag_prefix
        if args.command == "list":
            return _list(root, prefix)
        tag = resolve_run(root, prefix, args.run)
        if args.command == "restore":
            written = restore(root, tag, args.out, remote=cfg.orchestration.remote)
            print(f"restored {tag} into {args.out}:")
            for path in written:
                print(f"  {path}")
            return 0
        # Rollback changes the published files and dvc.lock: it holds the repository like a
        # pipeline run (flows/repolock.py), and first completes a publish killed mid-rename.
        with repository_lock("rollback", root, logger=logging.getLogger("forecast")):
            return _rollback(root, cfg, tag, args.no_version)
    except Exception as err:
        message = user_error(err)  # bad input, params or disk: one line, not a traceback
        if message is None:
            raise
        print(f"{args.command} failed: {message}", file=sys.stderr)
        return 2


def _rollback(root: Path, cfg, tag: str, no_version: bool) -> int:
    from flows.dvc import record_stage

    prefix = cfg.orchestration.tag_prefix
    with tempfile.TemporaryDirectory(prefix="rollback-") as scratch:
        result = rollback(
            root, tag, cfg.publish.store, cfg.publish.export, Path(scratch), url=cfg.publish.url
        )
    record_stage("publish")  # dvc.lock now names the rolled-back store (or its manifest)
    print(
        f"rolled back: the published forecasts are those of {tag} "
        f"(model {result['model_version']}, run_key {result['run_key']})"
    )
    if cfg.orchestration.version_runs and not no_version:
        info = version_run(
            root,
            remote=cfg.orchestration.remote,
            tag_prefix=prefix,
            data_path=cfg.data.path,
            title=f"rollback of the published forecasts to {tag}",
            summary={
                "rollback_of": tag,
                "model_version": result["model_version"],
                "data_md5": result.get("data_md5", "rollback"),
                "flow_run_name": "rollback",
            },
        )
        print(f"versioned as {info['tag']} (commit {info['commit'][:10]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Grid search over params as DVC experiments: queue, run, compare, apply the best.

    python -m flows.search --grid prepare.lookback=24,36 'model.units=[32,16],[16]' \
        --metric lstm.rmse

1. every combination of the grid is queued as one experiment,
   ``dvc exp run --queue -n search-<stamp>-<i> -S key=value ... <target>`` (target: the
   ``evaluate`` stage by default, so an experiment never publishes);
2. the queue runs: ``dvc exp run --run-all --jobs N`` (foreground, N workers);
3. ``dvc exp show --json`` is read; each experiment of this search is scored by ``--metric``, a
   dotted key inside any metrics file of the pipeline (``metrics/evaluate.json``), optionally
   prefixed ``FILE:`` to name the file; lower is better unless ``--maximize``;
4. the best is applied to the workspace with ``dvc exp apply`` (params.yaml, dvc.lock and the
   outputs), unless ``--no-apply``. Nothing is committed: review with ``git diff params.yaml``.

Grid values are comma-separated; commas inside brackets belong to a list value, so
``model.units=[32,16],[16]`` has two values. Each value is parsed as YAML (numbers, booleans,
lists). Every experiment stays listed in ``dvc exp show`` (``dvc exp remove`` to drop them).
Prints one JSON summary line at the end (also written to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml


class SearchError(RuntimeError):
    pass


class BadGrid(SearchError):
    """The grid or a params value in it is invalid: the user's input (exit 2, not 1)."""


# ---------------------------------------------------------------------------------- grid
def split_values(text: str) -> list[str]:
    """'24,36' -> ['24', '36']; '[32,16],[16]' -> ['[32,16]', '[16]'] (top-level commas only)."""
    values, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
            if depth < 0:
                raise BadGrid(f"unbalanced brackets in {text!r}")
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    if depth != 0:
        raise BadGrid(f"unbalanced brackets in {text!r}")
    values.append(current.strip())
    if any(v == "" for v in values):
        raise BadGrid(f"empty value in {text!r}")
    return values


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """['a.b=1,2', 'c.d=[1,2],[3]'] -> {'a.b': ['1', '2'], 'c.d': ['[1,2]', '[3]']}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, rest = item.partition("=")
        key = key.strip()
        if not sep or not key or "." not in key:
            raise BadGrid(f"grid entry {item!r} must look like section.key=v1,v2")
        if key in grid:
            raise BadGrid(f"grid key {key} given twice")
        values = split_values(rest)
        for v in values:
            try:
                yaml.safe_load(v)
            except yaml.YAMLError as err:
                raise BadGrid(f"{key}: value {v!r} is not valid YAML: {err}") from None
        grid[key] = values
    if not grid:
        raise BadGrid("an empty grid: give at least one section.key=v1,v2")
    return grid


def combinations(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def check_params(point: dict[str, str], params: Path = Path("params.yaml")) -> None:
    """Fail before queueing anything when a grid point is not a valid config (typo, bad value)."""
    from tasks.config import parse_config
    from tasks.errors import ConfigError

    raw = yaml.safe_load(params.read_text()) or {}
    for key, value in point.items():
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    try:
        parse_config(raw, source=f"{params} with {point}")
    except ConfigError as err:
        raise BadGrid(str(err)) from None


# ---------------------------------------------------------------------------------- dvc
def dvc(*args: str, cwd: Path | None = None) -> str:
    # DVC's queue workers run `dvc` by name (dvc_task): the interpreter's bin dir goes on PATH.
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SearchError(
            f"dvc {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def queue(point: dict[str, str], name: str, target: str | None) -> None:
    sets = [arg for key, value in point.items() for arg in ("-S", f"{key}={value}")]
    dvc("exp", "run", "--queue", "-n", name, *sets, *([target] if target else []))


def walk_experiments(shown: list[dict]):
    """(name, data) of every experiment in `dvc exp show --json` output."""
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                yield rev.get("name") or exp.get("name"), rev
                # checkpoints / nested experiments, should a DVC version list them
                for sub in rev.get("experiments") or []:
                    for subrev in sub.get("revs") or []:
                        yield subrev.get("name"), subrev


def lookup(metrics: dict, spec: str) -> float | None:
    """Value of `spec` ('[FILE:]dotted.key') in {file: {"data": {...}}}, or None when absent."""
    file, _, dotted = spec.rpartition(":")
    for path, content in metrics.items():
        if file and path != file:
            continue
        node = (content or {}).get("data")
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if isinstance(node, int | float) and not isinstance(node, bool):
            return float(node)
    return None


def collect(names: list[str], metric: str) -> list[dict]:
    shown = json.loads(dvc("exp", "show", "--json", "--hide-queued", "--no-pager") or "[]")
    wanted = set(names)
    rows = []
    for name, rev in walk_experiments(shown):
        if name not in wanted:
            continue
        data = rev.get("data") or {}
        value = lookup(data.get("metrics") or {}, metric)
        rows.append(
            {
                "name": name,
                "rev": rev.get("rev"),
                "status": data.get("status") or ("failed" if rev.get("error") else "done"),
                "metric": value,
                "error": (rev.get("error") or {}).get("msg") if rev.get("error") else None,
            }
        )
    return rows


def apply_best(best: dict, params: Path = Path("params.yaml")) -> str | None:
    """`dvc exp apply` the best; returns a note when only later stages' outputs were missing.

    An experiment reproduced up to a target (evaluate) has no outputs for the stages after it
    (publish), so `dvc exp apply` applies params, dvc.lock and metrics, then reports a failed
    checkout of those outputs. That is accepted only when params.yaml did take the best values.
    """
    try:
        dvc("exp", "apply", best["name"])
        return None
    except SearchError as err:
        if "Checkout failed" not in str(err):
            raise
        raw = yaml.safe_load(params.read_text()) or {}
        for key, value in best["params"].items():
            node = raw
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node != value:
                raise
        return (
            f"applied {best['name']}; outputs of stages it did not run were not checked out "
            "(run `dvc repro` to rebuild them)"
        )


# ---------------------------------------------------------------------------------- search
def search(
    grid: dict[str, list[str]],
    metric: str,
    *,
    maximize: bool = False,
    jobs: int = 1,
    target: str | None = "evaluate",
    apply: bool = True,
    prefix: str | None = None,
) -> dict:
    points = combinations(grid)
    for point in points:
        check_params(point)
    prefix = prefix or time.strftime("search-%Y%m%d-%H%M%S")
    names = [f"{prefix}-{i}" for i in range(len(points))]
    started = time.perf_counter()
    for point, name in zip(points, names, strict=True):
        queue(point, name, target)
    dvc("exp", "run", "--run-all", "--jobs", str(jobs))
    ran = time.perf_counter() - started

    by_name = {row["name"]: row for row in collect(names, metric)}
    results = []
    for point, name in zip(points, names, strict=True):
        row = by_name.get(name, {"name": name, "metric": None, "status": "missing"})
        results.append({**row, "params": {k: yaml.safe_load(v) for k, v in point.items()}})
    scored = [r for r in results if r["metric"] is not None]
    if not scored:
        raise SearchError(
            f"no experiment of this search reported {metric!r}: " + json.dumps(results, default=str)
        )
    best = (max if maximize else min)(scored, key=lambda r: r["metric"])
    note = None
    if apply:
        note = apply_best(best)
    return {
        "metric": metric,
        "direction": "max" if maximize else "min",
        "best": best,
        "applied": apply,
        "note": note,
        "experiments": results,
        "seconds": round(ran, 1),
    }


def main(argv: list[str] | None = None, prog: str = "python -m flows.search") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--grid", nargs="+", required=True, metavar="KEY=V1,V2", help="params and their values"
    )
    parser.add_argument("--metric", required=True, help="[FILE:]dotted.key, e.g. lstm.rmse")
    parser.add_argument("--maximize", action="store_true", help="higher metric is better")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run at once")
    parser.add_argument(
        "--target", default="evaluate", help="stage to reproduce up to ('' = whole pipeline)"
    )
    parser.add_argument("--no-apply", action="store_true", help="only report the best")
    parser.add_argument("--name", help="experiment name prefix (default search-<time>)")
    parser.add_argument("--out", type=Path, help="also write the summary JSON here")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args(argv)
    try:
        summary = search(
            parse_grid(args.grid),
            args.metric,
            maximize=args.maximize,
            jobs=args.jobs,
            target=args.target or None,
            apply=not args.no_apply,
            prefix=args.name,
        )
    except SearchError as err:
        print(f"search failed: {err}", file=sys.stderr)
        return 2 if isinstance(err, BadGrid) else 1
    text = sys.stderr if args.json else sys.stdout  # with --json stdout holds only the JSON
    for r in summary["experiments"]:
        print(f"{r['name']:32s} {r['status']:8s} {args.metric}={r['metric']}  {r['params']}",
              file=text)  # fmt: skip
    verb = "applied" if summary["applied"] else "best (not applied)"
    print(f"{verb}: {summary['best']['name']} {args.metric}={summary['best']['metric']}", file=text)
    if summary["note"]:
        print(summary["note"], file=text)
    line = json.dumps(summary, default=str)
    if args.out:
        args.out.write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

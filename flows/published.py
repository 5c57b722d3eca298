"""What is published, and by which run.

    python -m flows.published              # the current forecasts (with intervals) and their run
    python -m flows.published --runs       # every published run, oldest first
    python -m flows.published --csv PATH   # also write the current forecasts to a CSV file
    python -m flows.published --parquet PATH
    python -m flows.published --json       # the run and every current row as one JSON document

Reads the store named by `publish.url` in params.yaml (else the SQLite file `publish.store`), or
--store (a file or a database URL, password as ${VAR}); never writes to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.config import DEFAULT_PARAMS

if TYPE_CHECKING:
    import polars as pl

# The model that produced each row and why (a short series: which candidate, on how many folds).
SHOWN = ("series_id", "timestamp", "horizon_step", "forecast", "lo_80", "hi_80", "lo_95", "hi_95",
         "model", "reason")  # fmt: skip
# `--runs` as text: the columns that fit 100 characters (--json: every column of RUN_SHOWN).
RUN_TEXT = ("publish_seq", "run_key", "model_version", "published_at", "trained_through", "n_rows")
RUN_SHOWN = (
    "publish_seq",
    "run_key",
    "model_version",
    "git_commit",
    "data_md5",
    "flow_run_id",
    "published_at",
    "trained_through",
    "covariates",
    "last_published_at",
    "n_rows",
)


def describe_run(current: pl.DataFrame) -> str:
    if current.height == 0:
        return "the store holds no published forecasts"
    row = current.row(0, named=True)
    return (
        f"published run {row['run_key'][:12]}: model {row['model_version']}, "
        f"git {row['git_commit'][:12]}, data md5 {row['data_md5'][:12]}, "
        f"flow run {row['flow_run_id']}, published {row['published_at']}, "
        # An export written before lineage had trained_through lacks the column.
        f"model trained through {row.get('trained_through', 'unknown')}; "
        f"{current.height} rows, {current['series_id'].n_unique()} series"
    )


def as_json(frame: pl.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts (timestamps as ISO 8601 text)."""
    import polars as pl

    temporal = [c for c, t in frame.schema.items() if t.is_temporal()]
    return frame.with_columns(pl.col(temporal).dt.to_string("%Y-%m-%dT%H:%M:%S")).to_dicts()


def current_json(current: pl.DataFrame) -> dict:
    import polars as pl

    run = {c: current[c][0] for c in RUN_SHOWN if c in current.columns} if current.height else {}
    shown = [c for c in SHOWN if c in current.columns]
    return {
        "run": as_json(pl.DataFrame([run]))[0] if run else None,
        "rows": current.height,
        "series": current["series_id"].n_unique() if current.height else 0,
        "forecasts": as_json(current.select(shown)),
    }


def main(argv: list[str] | None = None, prog: str = "python -m flows.published") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.replace("python -m flows.published", prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)"
    )
    parser.add_argument(
        "--store", help="a SQLite file or database URL (default: publish.url / publish.store)"
    )
    parser.add_argument("--runs", action="store_true", help="list every published run")
    parser.add_argument("--csv", type=Path, help="write the current forecasts to this CSV file")
    parser.add_argument("--parquet", type=Path, help="write them to this Parquet file")
    parser.add_argument("--rows", type=int, default=50, help="rows to print (default 50)")
    parser.add_argument("--json", action="store_true", help="print JSON (every row) instead")
    args = parser.parse_args(argv)
    # Imported after parsing: `--help` answers without loading polars and the store.
    import polars as pl

    from tasks.config import load_config
    from tasks.errors import PipelineError
    from tasks.publishing.db import from_config, locate
    from tasks.publishing.store import list_runs, read_current

    try:
        store = locate(args.store) if args.store else from_config(load_config(args.params))
        if args.runs:
            runs = list_runs(store)
            if args.json:
                print(json.dumps(as_json(runs.select(RUN_SHOWN)), indent=2, default=str))
                return 0
            shown = runs.select(RUN_TEXT).with_columns(
                pl.col("run_key").str.slice(0, 12),
                pl.col("published_at").cast(pl.String).str.slice(0, 19),
            )
            with pl.Config(
                tbl_rows=-1, tbl_cols=-1, tbl_width_chars=100, tbl_hide_dataframe_shape=True
            ):
                print(shown)
            return 0
        current = read_current(store)
    except (FileNotFoundError, PipelineError) as err:
        print(f"published: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(current_json(current), indent=2, default=str))
    else:
        print(describe_run(current))
        with pl.Config(tbl_rows=args.rows, tbl_cols=-1, tbl_width_chars=200):
            print(current.select(SHOWN).head(args.rows))
    out = sys.stderr if args.json else sys.stdout  # stdout holds only the JSON document
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        current.write_csv(args.csv)
        print(f"wrote {current.height} rows to {args.csv}", file=out)
    if args.parquet:
        args.parquet.parent.mkdir(parents=True, exist_ok=True)
        current.write_parquet(args.parquet)
        print(f"wrote {current.height} rows to {args.parquet}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

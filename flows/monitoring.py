"""How the published forecasts came true: the realized accuracy the monitor stage stored.

    python -m flows.monitoring               # per published run: realized vs backtest, degraded?
    python -m flows.monitoring --series      # per run and series
    python -m flows.monitoring --json        # both, as one JSON document

Reads the store named by `publish.url` in params.yaml (else the SQLite file `publish.store`), or
--store (a file or a database URL, password as ${VAR}); never writes to it. A run is listed once
some of its target timestamps have been observed and the monitor stage has run since. "degraded"
applies the same rule as the `forecast.accuracy.degraded` event (tasks/monitor.degraded):
realized `monitor.metric` above the backtest figure x (1 + `monitor.max_degradation`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tasks.config import DEFAULT_PARAMS

if TYPE_CHECKING:
    import polars as pl


def realized_runs(
    scores: pl.DataFrame,
    series: pl.DataFrame,
    published: pl.DataFrame,
    expected: Mapping[str, Mapping[str, float]],
    metric: str,
    max_degradation: float,
) -> pl.DataFrame:
    """One row per scored run, oldest publish first: its realized scores, the backtest's
    `expected` figure of `metric`, the limit and whether it is degraded (null: no figure)."""
    import polars as pl

    from tasks.monitoring.analysis import Realized, degraded

    empty = pl.DataFrame()
    alerts = degraded(Realized(empty, series, scores, empty), expected, metric, max_degradation)
    flagged = {a["run_key"] for a in alerts}
    figure = {k: (v or {}).get(metric) for k, v in expected.items()}
    runs = published.select("run_key", "publish_seq", "published_at")
    return (
        scores.join(runs, on="run_key", how="left")
        .with_columns(
            pl.col("run_key")
            .replace_strict(figure, default=None, return_dtype=pl.Float64)
            .alias(f"expected_{metric}"),
        )  # fmt: skip
        .with_columns(
            (pl.col(f"expected_{metric}") * (1.0 + max_degradation)).alias("limit"),
            pl.when(pl.col(f"expected_{metric}").is_null())
            .then(None)
            .otherwise(pl.col("run_key").is_in(list(flagged)))
            .alias("degraded"),
        )
        .sort("publish_seq", nulls_last=True)
    )


def main(argv: list[str] | None = None, prog: str = "python -m flows.monitoring") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.replace("python -m flows.monitoring", prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)"
    )
    parser.add_argument(
        "--store", help="a SQLite file or database URL (default: publish.url / publish.store)"
    )
    parser.add_argument("--series", action="store_true", help="per run and series")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    # Imported after parsing: `--help` answers without loading polars and the store.
    import polars as pl

    from tasks.config import load_config
    from tasks.errors import PipelineError
    from tasks.monitoring.store import read_expectations, read_scores
    from tasks.publishing.db import from_config, locate
    from tasks.publishing.store import list_runs

    try:
        cfg = load_config(args.params)
        store = locate(args.store) if args.store else from_config(cfg)
        scores = read_scores(store, "monitor_runs")
        series = read_scores(store, "monitor_series")
        runs = realized_runs(
            scores,
            series,
            list_runs(store),
            read_expectations(store),
            cfg.monitor.metric,
            cfg.monitor.max_degradation,
        )
    except (FileNotFoundError, PipelineError) as err:
        print(f"monitoring: {err}", file=sys.stderr)
        return 2
    if args.json:
        payload = {"metric": cfg.monitor.metric, "max_degradation": cfg.monitor.max_degradation}
        payload["runs"] = runs.drop("scored_at").to_dicts()
        payload["series"] = series.drop("scored_at").to_dicts()
        print(json.dumps(payload, indent=2, default=str))
        return 0
    if runs.height == 0:
        print("no published run has observed targets yet (or the monitor stage has not run)")
        return 0
    n_bad = runs["degraded"].fill_null(False).sum()
    print(
        f"{runs.height} published runs scored against their actuals; {n_bad} degraded "
        f"({cfg.monitor.metric} above the backtest x {1 + cfg.monitor.max_degradation:g})"
    )
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=24, tbl_width_chars=200):
        print(runs.drop("scored_at"))
        if args.series:
            print(series.drop("scored_at"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

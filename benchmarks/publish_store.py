"""Publish time as the store's history grows: N successive publishes of S series x H steps into
one store (a new run each time), on the SQLite file and on a PostgreSQL server this script
starts (tests/pgserver.py; skipped with a note where the binaries are missing).

    python -m benchmarks.publish_store [--publishes 50] [--series 10000] [--horizon 24]

Prints, per backend, the first, last and median publish seconds and the last/first ratio (the
store is written in place, so it should stay near 1; the copy-on-publish store grew with the
file), and writes benchmarks/results/publish_store.json. Each publish is the library call the
publish stage makes (tasks/store.publish_forecasts: the store, the Parquet export, the journal).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from tasks.publishing.store import list_runs, publish_forecasts

RESULT = Path(__file__).parent / "results" / "publish_store.json"


def forecasts(n_series: int, horizon: int, run: int) -> pl.DataFrame:
    rng = np.random.default_rng(run)
    n = n_series * horizon
    values = rng.normal(100.0, 10.0, n)
    base = pl.DataFrame(
        {
            "series_id": np.repeat([f"s{i:05d}" for i in range(n_series)], horizon),
            "horizon_step": np.tile(np.arange(1, horizon + 1), n_series),
            "forecast": values,
        }
    )
    return base.with_columns(
        pl.datetime(2030, 1, 1).dt.offset_by(pl.format("{}mo", pl.col("horizon_step") - 1))
        .cast(pl.Datetime("us")).alias("timestamp"),
        (pl.col("forecast") - 5).alias("lo_80"),
        (pl.col("forecast") + 5).alias("hi_80"),
        (pl.col("forecast") - 9).alias("lo_95"),
        (pl.col("forecast") + 9).alias("hi_95"),
    )  # fmt: skip


def lineage(run: int) -> dict:
    md5 = f"{run:032x}"
    return {
        "model_version": md5[:12],
        "git_commit": "c" * 40,
        "data_md5": "d" * 32,
        "params_md5": "p" * 32,
        "model_md5": md5,
        "flow_run_id": "bench",
        "published_at": datetime.now().isoformat(),
    }


def series_of_publishes(store, export: Path, publishes: int, n_series: int, horizon: int) -> dict:
    seconds, cpu = [], []
    for run in range(publishes):
        frame = forecasts(n_series, horizon, run)  # made outside the timed part
        start, start_cpu = time.perf_counter(), time.process_time()
        publish_forecasts(frame, lineage(run), store, export)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        print(
            f"  publish {run + 1}/{publishes}: {seconds[-1]:.2f} s ({cpu[-1]:.2f} s CPU)",
            flush=True,
        )
    runs = list_runs(store)
    assert runs.height == publishes and int(runs["n_rows"].sum()) == publishes * n_series * horizon
    return {
        "first_s": round(seconds[0], 3),
        "last_s": round(seconds[-1], 3),
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "last_over_first": round(seconds[-1] / seconds[0], 3),
        # the first publish also creates the schema: the median of the first 5 is a steadier base
        "last5_over_first5_median": round(
            statistics.median(seconds[-5:]) / statistics.median(seconds[:5]), 3
        ),
        # This process's CPU seconds (a shared machine's load inflates wall time, not these;
        # a PostgreSQL server's own work is not in them).
        "cpu_first_s": round(cpu[0], 3),
        "cpu_last_s": round(cpu[-1], 3),
        "cpu_last5_over_first5_median": round(
            statistics.median(cpu[-5:]) / statistics.median(cpu[:5]), 3
        ),
        "rows_in_store": publishes * n_series * horizon,
        "seconds": [round(s, 3) for s in seconds],
        "cpu_seconds": [round(s, 3) for s in cpu],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=50)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so a started PostgreSQL server is stopped (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "publishes": args.publishes,
        "series": args.series,
        "horizon": args.horizon,
        "rows_per_publish": args.series * args.horizon,
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        work = Path(tmp)
        for backend in args.backends.split(","):
            print(f"{backend}:", flush=True)
            server = None
            if backend == "sqlite":
                store = work / "sqlite" / "forecasts.sqlite"
            else:
                from tests.pgserver import NoPostgres, PostgresServer

                try:
                    server = PostgresServer().start()
                except NoPostgres as err:
                    print(f"  skipped: {err}")
                    results["backends"][backend] = {"skipped": str(err)}
                    continue
                store = server.create_database("bench")
            try:
                export = work / backend / "forecasts.parquet"
                figures = series_of_publishes(
                    store, export, args.publishes, args.series, args.horizon
                )
            finally:
                if server is not None:
                    server.stop()
            if backend == "sqlite":
                figures["store_bytes"] = store.stat().st_size
            results["backends"][backend] = figures
            print(
                f"  first {figures['first_s']:.2f} s, last {figures['last_s']:.2f} s, median "
                f"{figures['median_s']:.2f} s, last/first {figures['last_over_first']:.2f} "
                f"(median of last 5 / first 5: {figures['last5_over_first5_median']:.2f}; CPU "
                f"{figures['cpu_first_s']:.2f} -> {figures['cpu_last_s']:.2f} s, last 5 / first 5 "
                f"{figures['cpu_last5_over_first5_median']:.2f})"
            )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

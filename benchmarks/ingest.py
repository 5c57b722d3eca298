"""Ingest benchmark: the project's ingest against a plain anchor, same files, same run.

    python -m benchmarks.ingest                          # 10,000 series x 1,000 days = 10M rows
    python -m benchmarks.ingest --series 1000 --steps 1000 --out /tmp/ingest.json   # 1M rows

Generates daily series (positive values, one row per series and day, sorted by series then
time, as exports usually are) and writes them once as Parquet and as CSV. Then, for each format,
it times in a fresh process each (so that each has its own peak RSS):

  project  tasks.ingest.read_source + tasks.ingest.ingest, the pure functions the ingest stage
           calls (every check of the long format, the time grid, gaps, history, constant
           series, quarantine), with data.frequency 1d;
  anchor   a plain polars read (CSV: dates parsed by the reader), a pandera schema with the
           unique (series_id, timestamp) key and a range check on `value`, and a per-series
           timestamp-difference check (every step is one day).

Runs alternate project/anchor `--repeats` times; the median wall time gives rows/s and the ratio
(project rows/s / anchor rows/s; target >= 1.0). Peak RSS is the process's high-water mark
(ru_maxrss) and its rise above the RSS after imports, with the pipeline's allocator setting
(flows/__init__.py). Results: benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flows import JEMALLOC_CONF, JEMALLOC_ENV

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"
MIB = 1024**2
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / MIB


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def generate(series: int, steps: int, workdir: Path, seed: int = 0) -> dict[str, Path]:
    """Write the same rows as data.parquet and data.csv; returns the paths."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    level = rng.uniform(10, 1000, (series, 1))
    season = 1 + 0.2 * np.sin(2 * np.pi * t / 7) * rng.uniform(0.2, 1, (series, 1))
    noise = rng.lognormal(0, 0.05, (series, steps))
    values = (level * season * noise).ravel().round(3)
    first = datetime(2020, 1, 1)
    days = pl.datetime_range(first, first + timedelta(days=steps - 1), "1d", eager=True)
    ids = pl.Series([f"s{i:05d}" for i in range(series)])
    frame = pl.DataFrame(
        {
            "series_id": ids.gather(np.repeat(np.arange(series), steps)),
            "timestamp": pl.concat([days] * series),
            "value": values,
        }
    )
    paths = {"parquet": workdir / "data.parquet", "csv": workdir / "data.csv"}
    frame.write_parquet(paths["parquet"])
    frame.write_csv(paths["csv"], datetime_format="%Y-%m-%d")
    return paths


def config():
    from tasks.config import parse_config

    # Daily data; lstm_history 30 + 2 * 14 + 7 = 65 of the 1,000 steps; the default value bounds.
    return parse_config(
        {
            "data": {"frequency": "1d", "season_length": 7},
            "forecast": {"horizon": 14},
            "prepare": {"lookback": 30, "validation_steps": 7},
            "evaluate": {"n_windows": 1},
        }
    )


def run_project(path: Path) -> int:
    from tasks.ingest import ingest, read_source

    cfg = config()
    result = ingest(read_source(path, "auto", cfg.data.timezone), cfg)
    assert result.quarantined.height == 0, result.quarantined.head()
    return result.frame.height


def run_anchor(path: Path) -> int:
    import pandera.polars as pa
    import polars as pl

    if path.suffix == ".csv":
        types = {"series_id": pl.String, "timestamp": pl.Datetime("us"), "value": pl.Float64}
        frame = pl.read_csv(path, schema_overrides=types)
    else:
        frame = pl.read_parquet(path)
    schema = pa.DataFrameSchema(
        {
            "series_id": pa.Column(pl.String, nullable=False),
            "timestamp": pa.Column(pl.Datetime("us"), nullable=False),
            "value": pa.Column(pl.Float64, nullable=False, checks=pa.Check.ge(0.0)),
        },
        unique=["series_id", "timestamp"],
    )
    schema.validate(frame, lazy=True)
    step = pl.col("timestamp").diff().over("series_id")
    irregular = frame.select((step.is_not_null() & (step != pl.duration(days=1))).sum()).item()
    assert irregular == 0, irregular
    return frame.height


def worker(method: str, path: Path) -> dict:
    import pandera.polars  # noqa: F401  both sides import what they use before the clock starts
    import polars  # noqa: F401

    import tasks.ingest  # noqa: F401

    baseline = rss_mib()
    started = time.perf_counter()
    rows = (run_project if method == "project" else run_anchor)(path)
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "rss_baseline_mib": baseline,
        "rss_peak_mib": peak_mib(),
        "rss_rise_mib": peak_mib() - baseline,
    }


def measure(method: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingest", "--worker", method, str(path)],
        cwd=ROOT,
        # The allocator setting of every pipeline entry point (flows/__init__.py), both sides.
        env={**os.environ, JEMALLOC_ENV: JEMALLOC_CONF},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{method} on {path.name} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return 0

    rows = args.series * args.steps
    result: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "rows": rows,
        "series": args.series,
        "steps": args.steps,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "anchor": "polars read + pandera (unique key, value >= 0) + per-series step check",
        "formats": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        started = time.perf_counter()
        paths = generate(args.series, args.steps, Path(tmp))
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for fmt in args.formats.split(","):
            runs: dict[str, list[dict]] = {"project": [], "anchor": []}
            for _ in range(args.repeats):
                for method in runs:
                    runs[method].append(measure(method, paths[fmt]))
                    r = runs[method][-1]
                    print(f"  {fmt:<8} {method:<8} {r['seconds']:7.2f} s  "
                          f"{r['rows_per_s'] / 1e6:6.2f}M rows/s  peak RSS "
                          f"{r['rss_peak_mib']:,.0f} MiB (+{r['rss_rise_mib']:,.0f})",
                          file=sys.stderr)  # fmt: skip
            summary = {}
            for method, done in runs.items():
                seconds = statistics.median(r["seconds"] for r in done)
                summary[method] = {
                    "seconds_median": seconds,
                    "rows_per_s": rows / seconds,
                    "rss_peak_mib": max(r["rss_peak_mib"] for r in done),
                    "rss_rise_mib": max(r["rss_rise_mib"] for r in done),
                    "runs": done,
                }
            summary["ratio"] = summary["project"]["rows_per_s"] / summary["anchor"]["rows_per_s"]
            summary["file_mib"] = paths[fmt].stat().st_size / MIB
            result["formats"][fmt] = summary
            print(f"{fmt}: project {summary['project']['rows_per_s'] / 1e6:.2f}M rows/s, anchor "
                  f"{summary['anchor']['rows_per_s'] / 1e6:.2f}M rows/s, ratio "
                  f"{summary['ratio']:.2f}x", file=sys.stderr)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

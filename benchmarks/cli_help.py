"""How fast `forecast --help` answers (issue 24.5: under a second).

Runs the installed console script (`forecast`, what `./run.sh forecast` runs) in a fresh process,
`--runs` times each (default 5), for `forecast --help` and `forecast COMMAND --help` of every
command, and records each one's wall times and median. Python's own start-up is included (it is
what a user waits for); the page cache is warm after the first run of each, as it is for a user.
Also records, per command, the heavy modules the help still imports (none should be: TensorFlow,
Prefect, DVC, polars, pandera), from `python -X importtime`.

    python -m benchmarks.cli_help                # writes benchmarks/results/cli_help.json
    python -m benchmarks.cli_help --runs 9 --out /tmp/cli_help.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "cli_help.json"
FORECAST = str(Path(sys.executable).parent / "forecast")
COMMANDS = ["", "pipeline", "stage", "runs", "runs list", "report", "published", "monitor",
            "export", "search", "serve", "multiworker"]  # fmt: skip
HEAVY = ("tensorflow", "prefect", "dvc", "polars", "pandera", "keras", "statsforecast")


def wall_times(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        times.append(round(time.perf_counter() - started, 3))
    return times


def heavy_imports(command: str) -> list[str]:
    """Top-level packages among HEAVY that `forecast COMMAND --help` imports."""
    code = (
        "import sys; from flows.cli import main; "
        f"sys.argv = ['forecast', *{command.split()!r}, '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    names = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
             if line.startswith("import time:")}  # fmt: skip
    return sorted(names & set(HEAVY))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cli_help",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    results = {}
    for command in COMMANDS:
        shown = f"forecast {command} --help".replace("  ", " ")
        times = wall_times([FORECAST, *command.split(), "--help"], args.runs)
        results[shown] = {
            "median_s": statistics.median(times),
            "times_s": times,
            "heavy_imports": heavy_imports(command),
        }
        print(f"{shown:<36} median {results[shown]['median_s']:.3f} s  {times}", flush=True)
    medians = [r["median_s"] for r in results.values()]
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "runs_per_command": args.runs,
        "forecast_help_median_s": results["forecast --help"]["median_s"],
        "slowest_command_median_s": max(medians),
        "commands_under_1s": sum(m < 1.0 for m in medians),
        "commands": len(medians),
        "results": results,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },  # fmt: skip
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

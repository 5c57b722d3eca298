"""How the pipeline's time against the anchor's moves with the number of series (issue 22).

The pipeline's cost beyond the statistical anchor is mostly the LSTM's, and the defaults bound
that (`training.epochs`, `windows_per_epoch` and `batch_size` are sized by a step budget,
tasks/config/auto.py), while the anchor's fits grow with every series. So the ratio
pipeline / anchor falls as the series grow. This measures it on M3 monthly subsets: every 4th,
every 2nd and every series (by name: benchmarks/many_series.py `--stride`), each one
`many_series` run (the pipeline with the four data settings, then the anchor in the same run),
one after the other, alone on the machine. Then a straight line through each side's seconds
against the number of series, and where the ratio would cross 1.5x by those lines: an
extrapolation from the measured points, stated as one.

    python -m benchmarks.ratio_by_series                    # runs the three subsets (~15 min)
    python -m benchmarks.ratio_by_series --reuse A.json B.json ...   # many_series outputs

Writes benchmarks/results/ratio_by_series.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ratio_by_series.json"
FREQ = "monthly"
TARGET = 1.5  # the bound on pipeline / anchor


def run_stride(stride: int, out: Path) -> dict:
    """One many_series run of every `stride`-th monthly series, with the anchor timed."""
    cmd = [
        sys.executable, "-m", "benchmarks.many_series", "--freq", FREQ, "--stride", str(stride),
        "--neural-steps", "0", "--stat-peers", "", "--out", str(out),
        "--accuracy-out", str(out.with_name(out.stem + "_accuracy.json")),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def point(result: dict) -> dict:
    """Series, pipeline and anchor seconds of one many_series output."""
    r = result["results"][FREQ] if "results" in result else result[FREQ]
    return {
        "series": r["series"],
        "lstm_series": r["auto"]["train"]["basis"]["series"],
        "pipeline_s": r["pipeline_s"],
        "anchor_s": r["anchor"]["seconds"],
        "ratio": round(r["pipeline_s"] / r["anchor"]["seconds"], 3),
        "stages_s": {k: v["seconds"] for k, v in r["stages"].items()},
        "auto_chosen": r["auto"]["train"]["chosen"],
    }


def fit_lines(points: list[dict]) -> dict:
    """Least-squares lines seconds = a + b * series for the pipeline and the anchor, and the
    series count at which those lines put the ratio at TARGET."""
    n = np.array([p["series"] for p in points], dtype=float)
    (pb, pa), (ab, aa) = (
        np.polyfit(n, [p[k] for p in points], 1) for k in ("pipeline_s", "anchor_s")
    )
    lines = {
        key: {"intercept_s": round(float(a), 2), "per_series_s": round(float(b), 5)}
        for key, a, b in (("pipeline_s", pa, pb), ("anchor_s", aa, ab))
    }
    # pa + pb n <= TARGET (aa + ab n)  <=>  n >= (pa - TARGET aa) / (TARGET ab - pb)
    slope = TARGET * ab - pb
    crossing = (pa - TARGET * aa) / slope if slope > 0 else None
    at = {str(k): round(float((pa + pb * k) / (aa + ab * k)), 3) for k in (1_000, 5_000, 10_000)}
    return {
        "lines": lines,
        "ratio_at_or_below_target_from_series": None if crossing is None else round(crossing),
        "ratio_by_the_lines": at,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strides", default="4,2,1", help="subsets: every Nth monthly series")
    p.add_argument("--reuse", nargs="*", type=Path, help="many_series outputs instead of runs")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.reuse:
        runs = [json.loads(path.read_text()) for path in args.reuse]
        source = "many_series outputs given with --reuse, each its own run alone on the machine"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            strides = [int(s) for s in args.strides.split(",")]
            runs = [run_stride(s, Path(tmp) / f"stride{s}.json") for s in strides]
        source = "many_series runs made by this script, one after the other"
    points = sorted((point(r) for r in runs), key=lambda p: p["series"])
    if len(points) < 2:
        raise SystemExit("need two subsets or more to fit a line")
    result = {
        "benchmark": "ratio_by_series",
        "date": date.today().isoformat(),
        "frequency": FREQ,
        "data": "M3 monthly training parts, subsets by --stride (benchmarks/many_series.py)",
        "source": source,
        "points": points,
        **fit_lines(points),
        "note": "the crossing and the ratios at 1,000-10,000 series are extrapolated from the "
        "measured points by straight lines; only the points were measured",
    }
    for q in points:
        print(
            f"{q['series']:6d} series  pipeline {q['pipeline_s']:7.1f} s  anchor "
            f"{q['anchor_s']:6.1f} s  ratio {q['ratio']:.3f}"
        )
    print(f"lines: {result['lines']}")
    print(
        f"ratio <= {TARGET} from about {result['ratio_at_or_below_target_from_series']} series "
        f"(extrapolated); by the lines: {result['ratio_by_the_lines']}"
    )
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

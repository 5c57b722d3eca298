"""`execution.engine: dask` (tasks/evaluation/distributed.py) on a real cluster: `dask scheduler`
and two `dask worker` processes on 127.0.0.1 (tests/daskcluster.py). The statistical part of
evaluate (every candidate backtested on the folds, the per-series choice) and the candidates'
forecasts are the local engine's, also when a worker is killed mid-stage; a cluster that cannot
do the work fails with a message, and a scheduler that does not answer stops before any work."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.config import parse_config
from tasks.evaluation import distributed, short, statistical
from tasks.evaluation.baselines import forecast_all
from tests.daskcluster import dask_cluster, free_port
from tests.synthetic import mixed_series

HORIZON, SEASON = 6, 12
CANDIDATES = ("naive", "seasonal_naive", "drift", "ets", "theta", "croston", "adida", "tsb")
STATISTICAL = [c for c in CANDIDATES if c in statistical.SPECS]


def cfg_for(address: str | None = None, **execution) -> object:
    raw = {
        "data": {"season_length": SEASON},
        "forecast": {"horizon": HORIZON},
        "evaluate": {"n_windows": 3, "step": 4, "candidates": list(CANDIDATES)},
    }
    if address:
        raw["execution"] = {"engine": "dask", "address": address, **execution}
    return parse_config(raw)


def many_series(n: int = 48, seed: int = 7) -> dict[str, np.ndarray]:
    """Seasonal, trending, intermittent, too-short-for-a-season and constant series, mixed
    lengths (so the fits fall into both season groups)."""
    return mixed_series(n, seed, SEASON, lengths=(14, 40), constant_every=8, id_width=3)


def statistical_part(values: dict[str, np.ndarray], cfg) -> tuple[list, dict]:
    """What the engine changes in evaluate and publish: each series backtested on its folds and
    its candidate chosen (short.choose_all), and every candidate's forecast of the horizon."""
    choices = short.choose_all(values, cfg)
    forecasts = forecast_all(STATISTICAL, list(values.values()), HORIZON, SEASON)
    return choices, forecasts


def assert_same(local: tuple[list, dict], dask: tuple[list, dict]) -> None:
    (lc, lf), (dc, df) = local, dask
    assert [(c.series_id, c.model, c.reason) for c in dc] == [
        (c.series_id, c.model, c.reason) for c in lc
    ]
    for a, b in zip(lc, dc, strict=True):
        assert a.evidence.keys() == b.evidence.keys()
        for key, value in a.evidence.items():
            if isinstance(value, float):
                assert b.evidence[key] == pytest.approx(value, abs=1e-9, rel=0), (a.series_id, key)
    for name in STATISTICAL:
        np.testing.assert_allclose(df[name], lf[name], rtol=0, atol=1e-9, err_msg=name)


@pytest.fixture(scope="module")
def local_result():
    values = many_series()
    return values, statistical_part(values, cfg_for())


@pytest.mark.slow
def test_two_dask_workers_give_the_local_selection_and_forecasts(tmp_path, local_result):
    from distributed import get_task_stream

    values, local = local_result
    with dask_cluster(tmp_path / "cluster", workers=2) as cluster:
        cfg = cfg_for(cluster.address)
        with distributed.engine(cfg) as eng:
            assert eng.slots() == 2
            with get_task_stream(eng.client) as stream:
                dask = statistical_part(values, cfg)
    assert_same(local, dask)
    # partitioned by series across both workers, not run in this process
    workers = {task["worker"] for task in stream.data if "_statsforecast_call" in task["key"]}
    assert len(workers) == 2, workers
    assert any(s.model in STATISTICAL for s in local[0])  # the comparison covers chosen fits


@pytest.mark.slow
def test_a_worker_killed_mid_stage_its_partitions_finish_on_the_other(tmp_path, local_result):
    values, local = local_result
    names = list(values.values())
    with dask_cluster(tmp_path / "cluster", workers=2) as cluster:
        cfg = cfg_for(cluster.address)
        killed = []

        def kill_once(done: int) -> None:  # after the first partition, with more still to run
            if not killed and done < len(names):
                cluster.kill_worker(0)
                killed.append(done)

        with distributed.engine(cfg):
            fits = statistical.forecast_many(
                STATISTICAL, names, HORIZON, SEASON, on_progress=kill_once
            )
        assert killed and cluster.workers[0].poll() is not None  # it died mid-stage
        assert cluster.workers[1].poll() is None
    for name in STATISTICAL:
        np.testing.assert_allclose(fits[name], local[1][name], rtol=0, atol=1e-9, err_msg=name)


@pytest.mark.slow
def test_a_cluster_left_without_workers_fails_the_stage_with_a_message(tmp_path):
    with dask_cluster(tmp_path / "cluster", workers=0) as cluster:
        cfg = cfg_for(cluster.address, no_workers_timeout_s=1.0)
        with distributed.engine(cfg), pytest.raises(distributed.ClusterFailed) as err:
            statistical.forecast_many(["ets"], [np.arange(30.0)], HORIZON, SEASON)
    assert f"the Dask cluster {cluster.address} has had no worker for 1 s" in str(err.value)
    assert "1 of 1 partitions of series left" in str(err.value)


def test_an_unreachable_scheduler_is_named_before_any_work():
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    cfg = cfg_for(address, connect_timeout_s=1.0)
    with pytest.raises(distributed.SchedulerUnreachable) as err:
        distributed.check_reachable(cfg)
    assert str(err.value).startswith(f"cannot reach the Dask scheduler {address} ")
    assert "execution.engine: local" in str(err.value)


def test_the_local_engine_connects_nowhere():
    with distributed.engine(cfg_for()) as eng:
        assert eng is None and statistical._ENGINE.get() is None
        distributed.check_reachable(cfg_for())


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"engine": "dask"}, "execution.engine: dask needs execution.address"),
        ({"engine": "dask", "address": "10.0.0.5:8786"}, "like tcp://10.0.0.5:8786"),
        ({"engine": "spark"}, "Input should be 'local' or 'dask'"),
        ({"address": "tcp://h:1", "connect_timeout_s": 0}, "greater than 0"),
    ],
)
def test_execution_params_are_checked(execution, message):
    from tasks.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_config({"execution": execution})


def test_execution_defaults_to_every_core_here_and_accepts_ipv6_and_tls():
    assert parse_config({}).execution.engine == "local"
    for address in ("tcp://[::1]:8786", "tls://sched.internal:8786", "tcp://10.0.0.5:8786"):
        cfg = parse_config({"execution": {"engine": "dask", "address": address}})
        assert cfg.execution.address == address


@pytest.mark.slow
def test_the_scheduler_lost_mid_stage_fails_the_stage_with_a_message(tmp_path, local_result):
    values, _ = local_result
    with dask_cluster(tmp_path / "cluster", workers=1) as cluster:
        cfg = cfg_for(cluster.address, no_workers_timeout_s=60.0)

        def kill_scheduler(done: int) -> None:
            if cluster.scheduler.poll() is None:
                cluster.scheduler.kill()
                cluster.scheduler.wait()

        with distributed.engine(cfg), pytest.raises(distributed.ClusterFailed) as err:
            statistical.forecast_many(
                STATISTICAL, list(values.values()), HORIZON, SEASON, on_progress=kill_scheduler
            )
    assert f"lost the Dask scheduler {cluster.address} mid-stage" in str(err.value)


@pytest.mark.slow
def test_a_worker_on_other_fitting_code_stops_the_run_before_any_work(tmp_path):
    import shutil

    from tests.daskcluster import ROOT

    code = tmp_path / "other-checkout"
    shutil.copytree(ROOT / "tasks", code / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    fitting = code / "tasks" / "evaluation" / "statistical.py"
    fitting.write_text(fitting.read_text() + "\n# another commit's fitting code\n")
    with dask_cluster(tmp_path / "cluster", workers=0) as cluster:
        cluster.add_worker(code)
        cluster.wait_for_workers(1)
        with (
            pytest.raises(distributed.ClusterFailed) as err,
            distributed.engine(cfg_for(cluster.address)),
        ):
            pytest.fail("the engine must not start")
    assert "would fit differently (statistical.py" in str(err.value)

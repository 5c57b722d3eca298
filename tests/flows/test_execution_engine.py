"""`execution.engine: dask` with a scheduler that does not answer: the commands stop with exit 2
naming the address, before any stage works (tasks/evaluation/distributed.py check_reachable).
The engine's results on a real cluster: tests/tasks/evaluation/test_distributed.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import base_env, run, update_params
from tests.daskcluster import dask_cluster, free_port
from tests.flows.test_cli import forecast


def _unreachable(project: Path) -> str:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    update_params(
        project, {"execution": {"engine": "dask", "address": address, "connect_timeout_s": 1.0}}
    )
    return address


def test_pipeline_with_an_unreachable_scheduler_exits_2_before_any_stage(project: Path):
    address = _unreachable(project)
    proc = forecast(["pipeline"], project)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot reach the Dask scheduler {address} (execution.address)" in proc.stderr
    assert not (project / "data" / "validated").exists()  # ingest never ran
    assert not (project / "metrics").exists()


def test_a_stage_with_an_unreachable_scheduler_exits_2_naming_it(project: Path):
    address = _unreachable(project)
    env = {**base_env(), "PYTHONPATH": str(project)}
    proc = run([sys.executable, "-m", "flows.stages", "evaluate"], project, env=env, check=False)
    assert proc.returncode == 2, proc.stderr
    # the engine is checked before the stage reads anything (its inputs do not exist here)
    assert f"evaluate failed: cannot reach the Dask scheduler {address}" in proc.stderr


@pytest.mark.slow
def test_the_evaluate_stage_on_two_dask_workers_scores_the_candidates_as_local(
    project_after_run: Path, tmp_path: Path
):
    project = project_after_run
    candidates = ["naive", "seasonal_naive", "drift", "theta", "adida"]
    update_params(project, {"evaluate": {"candidates": candidates}})
    env = {**base_env(), "PYTHONPATH": str(project)}
    stage = [sys.executable, "-m", "flows.stages", "evaluate"]
    run(stage, project, env=env)
    local = json.loads((project / "metrics" / "evaluate.json").read_text())
    with dask_cluster(tmp_path / "cluster", workers=2) as cluster:
        update_params(project, {"execution": {"engine": "dask", "address": cluster.address}})
        proc = run(stage, project, env=env)
    assert f"per-series fits on the Dask cluster {cluster.address} (2 workers)" in proc.stderr
    dask = json.loads((project / "metrics" / "evaluate.json").read_text())
    for name in ("theta", "adida"):
        assert dask[name].keys() == local[name].keys()
        for key, value in local[name].items():
            if isinstance(value, float):
                assert dask[name][key] == pytest.approx(value, abs=1e-9, rel=0), (name, key)

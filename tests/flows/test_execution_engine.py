"""`execution.engine: dask` with a scheduler that does not answer: the commands stop with exit 2
naming the address, before any stage works (tasks/evaluation/distributed.py check_reachable).
The engine's results on a real cluster: tests/tasks/evaluation/test_distributed.py."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import base_env, run, update_params
from tests.daskcluster import free_port
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

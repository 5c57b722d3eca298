"""One mutating command at a time per repository (flows/repolock.py): the stage runner, rollback
and `dvc repro` against a holder of the repository lock, the pipeline against a holder of DVC's
lock; a hung holder is named when the wait times out; a holder's own children are not blocked.

The holder is a real process holding the real locks (the pipeline's `repository_lock`, or DVC's
lock as `dvc repro` holds it), then hanging: what a pipeline or a `dvc repro` stuck mid-run
looks like to another command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import base_env, run

# Holds the repository like a pipeline run; with arguments, runs them as a child first.
HOLD_REPOSITORY = """
import subprocess, sys, time
from flows.repolock import repository_lock
with repository_lock("test holder"):
    print("held", flush=True)
    if len(sys.argv) > 1:
        print("child", subprocess.run(sys.argv[1:]).returncode, flush=True)
    time.sleep(3600)
"""
# Holds DVC's repository lock, as `dvc repro` does for its whole run.
HOLD_DVC = """
import time
from dvc.repo import Repo
repo = Repo(".")
repo.lock.lock()
print("held", flush=True)
time.sleep(3600)
"""
WAIT = {"FORECAST_LOCK_TIMEOUT_S": "3"}


class Holder:
    def __init__(self, project: Path, script: str, *child: str, env: dict | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *child], cwd=project, env=env or base_env(),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        assert line.strip() == "held", line

    def readline(self) -> str:
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(*args, **kwargs) -> Holder:
        started.append(Holder(*args, **kwargs))
        return started[-1]

    yield start
    for h in started:
        h.stop()


def assert_names_holder(stderr: str, pid: int) -> None:
    assert f"held by pid {pid} (`" in stderr and "since 20" in stderr, stderr
    assert "Traceback" not in stderr and "LockError" not in stderr, stderr


def test_stage_runner_waits_for_the_holder_and_times_out_naming_it(project: Path, holders):
    holder = holders(project, HOLD_REPOSITORY)
    stage = run(
        [sys.executable, "-m", "flows.stages", "ingest"], project,
        env=base_env(**WAIT), check=False,
    )  # fmt: skip
    assert stage.returncode == 2, (stage.stdout, stage.stderr)
    assert_names_holder(stage.stderr, holder.proc.pid)
    assert "stage ingest:" in stage.stderr and "FORECAST_LOCK_TIMEOUT_S" in stage.stderr
    assert not (project / "data/validated").exists()  # ingest did not run


@pytest.mark.parametrize("command", [["repro"], ["exp", "run"]], ids=["repro", "exp-run"])
def test_dvc_repro_cannot_start_while_the_repository_is_held(project: Path, holders, command):
    """The holder also holds DVC's lock: `dvc repro` / `dvc exp run` stop with DVC's lock
    message before any stage runs (`dvc --wait-for-lock repro` would wait)."""
    holders(project, HOLD_REPOSITORY)
    repro = run(["dvc", *command, "ingest"], project, env=base_env(**WAIT), check=False)
    assert repro.returncode != 0
    assert "Unable to acquire lock" in repro.stderr, repro.stderr
    assert "Running stage" not in repro.stdout
    assert not (project / "data/validated").exists()


def test_a_command_started_by_the_holder_is_covered_by_its_lock(project: Path, holders):
    """A holder's child (a pipeline running a stage command) runs at once instead of waiting on
    its own parent until the timeout."""
    holder = holders(
        project, HOLD_REPOSITORY, sys.executable, "-m", "flows.stages", "ingest",
        env=base_env(FORECAST_LOCK_TIMEOUT_S="20"),
    )  # fmt: skip
    assert holder.readline() == "child 0"
    assert (project / "data/validated/series.parquet").is_file()


@pytest.mark.slow
def test_pipeline_waits_on_dvc_lock_and_times_out_naming_the_holder(
    project_after_run: Path, prefect_env: dict, holders
):
    """A hung DVC command holds DVC's lock: the pipeline waits, then fails with one line naming
    it (pid, command, since when) instead of DVC's uncaught LockError."""
    project = project_after_run
    holder = holders(project, HOLD_DVC)
    result = run(
        [sys.executable, "-m", "flows.pipeline"], project,
        env={**prefect_env, **WAIT}, check=False,
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pipeline failed: pipeline run: DVC's lock"), last
    assert_names_holder(last, holder.proc.pid)


@pytest.mark.slow
def test_rollback_waits_for_the_holder_and_changes_nothing(
    versioned_project: Path, prefect_env: dict, holders
):
    project = versioned_project
    published = {p: p.read_bytes() for p in (project / "published").iterdir()}
    holder = holders(project, HOLD_REPOSITORY)
    rollback = run(
        [sys.executable, "-m", "flows.runs", "rollback", "latest", "--no-version"], project,
        env={**prefect_env, **WAIT}, check=False,
    )  # fmt: skip
    assert rollback.returncode == 2, (rollback.stdout, rollback.stderr)
    # A warning that it waits, then one line saying why it gave up.
    last = rollback.stderr.strip().splitlines()[-1]
    assert last.startswith("rollback failed: rollback: the repository lock"), rollback.stderr
    assert_names_holder(last, holder.proc.pid)
    assert {p: p.read_bytes() for p in (project / "published").iterdir()} == published

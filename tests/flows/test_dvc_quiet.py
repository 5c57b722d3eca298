"""DVC's chatter stays off stdout (issue 24.6): recording a stage in dvc.lock, as the pipeline
does after each stage it ran, prints nothing on stdout (where `forecast pipeline` prints its
summary, or with --json its one JSON document)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.conftest import base_env, run, update_params
from tests.flows.test_cli import forecast


def test_recording_a_stage_prints_nothing_on_stdout(project: Path):
    update_params(project, {"data": {"max_value": 1.0e9}})  # ingest's params: dvc.lock changes
    forecast(["stage", "ingest"], project, check=True)
    env = {**base_env(), "PYTHONPATH": str(project)}
    code = "from flows.dvc import record_stage; record_stage('ingest')"
    result = run([sys.executable, "-c", code], project, env=env)
    assert result.stdout == "", result.stdout
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["ingest"]["params"]["params.yaml"]["data"]["max_value"] == 1.0e9

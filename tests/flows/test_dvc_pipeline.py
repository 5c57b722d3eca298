"""`dvc repro` of the real pipeline in a fresh git repository holding a copy of the project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import base_env, run

pytestmark = pytest.mark.slow

PROTECTED = (
    "data/validated/series.parquet",
    "published/forecasts.sqlite",
    "published/forecasts.parquet",
    "dvc.lock",
)


def repro(project: Path, *args: str, check: bool = True):
    return run(["dvc", "repro", *args], project, env=base_env(), check=check)


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def snapshot(project: Path) -> dict[str, bytes]:
    return {rel: (project / rel).read_bytes() for rel in PROTECTED}


def test_repro_runs_all_then_nothing(reproduced_project: Path, project_after_run: Path):
    first = (reproduced_project.parent / "first_repro.log").read_text()
    assert ran_stages(first) == ["ingest", "monitor", "prepare", "train", "evaluate", "publish"]
    project = project_after_run

    scores = json.loads((project / "metrics/evaluate.json").read_text())
    for model in ("lstm", "naive", "seasonal_naive"):
        assert set(scores[model]) >= {"rmse", "mae", "smape", "mase"}
    # Seasonal naive on AirPassengers 1959-1960 (horizon 24, the latest backtest fold): the
    # published reference RMSE.
    folds = json.loads((project / "metrics/folds.json").read_text())["folds"]
    assert folds["fold_0"]["seasonal_naive"]["rmse"] == pytest.approx(76.98, abs=0.05)
    # TINY_PARAMS (tests/conftest.py) set a gate a 4-epoch model passes: it must have published.
    gate = json.loads((project / "metrics/gate.json").read_text())
    assert gate["passed"] is True, gate
    assert gate["reasons"] == []
    assert (project / "published/forecasts.parquet").is_file()
    assert run(["dvc", "status", "--json"], project, env=base_env()).stdout.strip() == "{}"

    second = repro(project)
    assert ran_stages(second.stdout) == []
    # A params change reruns exactly the stages that read the key: asserted once, for `dvc repro`
    # reporting to Prefect (tests/flows/test_prefect_pipeline.py), not repeated here.


def test_bad_data_stops_repro_and_changes_nothing(project_after_run: Path):
    project = project_after_run
    before = snapshot(project)

    raw = project / "data/raw/airpassengers.csv"
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join([*lines, lines[-1]]) + "\n")  # a duplicated last row
    failed = repro(project, check=False)
    assert failed.returncode != 0
    assert "duplicate" in failed.stderr.lower()
    assert "1960-12-01" in failed.stderr
    assert ran_stages(failed.stdout) == ["ingest"]
    assert snapshot(project) == before


# A gate that refuses: the stage path (exit 3, the published run unchanged) is
# tests/flows/test_cli.py test_published_report_and_a_refused_gate, the pipeline path (published
# bytes unchanged, Prefect's failed state) tests/flows/test_failures.py
# test_failed_gate_and_bad_data_fail_visibly_and_publish_nothing, and `dvc repro` stopped by a
# refusing publish (non-zero exit, NOT PUBLISHED, the current run kept)
# tests/flows/test_monitor_timeline.py (the drift gate): not repeated here.

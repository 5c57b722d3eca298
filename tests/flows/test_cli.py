"""The `forecast` console script (flows/cli.py), driven as a user runs it: the installed command
in a subprocess, in a copy of the project."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flows.cli import DELEGATED
from tests.conftest import base_env, run, update_params

FORECAST = str(Path(sys.executable).parent / "forecast")  # what [project.scripts] installed
COMMANDS = ["pipeline", "stage", "runs", "report", *DELEGATED]


def forecast(args: list[str], cwd: Path, check: bool = False, env: dict | None = None):
    # PYTHONPATH: the copy's code, as `python -m` in the copy would run it.
    env = {**(env or base_env()), "PYTHONPATH": str(cwd)}
    return run([FORECAST, *args], cwd, env=env, check=check)


def test_help_lists_every_user_action_and_the_exit_codes(project: Path):
    top = forecast(["--help"], project, check=True).stdout
    for command in COMMANDS:
        assert f"    {command}" in top, command
    assert "Exit codes: 0 ok; 2 bad input or params" in top and "3 the" in top
    for command in [*COMMANDS, "runs list", "runs restore", "runs rollback"]:
        shown = forecast([*command.split(), "--help"], project, check=True).stdout
        assert shown.startswith(f"usage: forecast {command} "), shown[:200]
        # Users' words: the command they typed, no module or internal file (issue 24.5).
        assert "python -m" not in shown and ".py" not in shown, (command, shown)
    # The modules' own entry points are unchanged (dvc.yaml runs `python -m flows.stages`).
    plain = run([sys.executable, "-m", "flows.published", "--help"], project, env=base_env())
    assert plain.stdout.startswith("usage: python -m flows.published ")


def test_json_and_params_flags_are_the_same_everywhere(project: Path):
    for command in ["pipeline", "stage", "runs list", "report", "published", "export", "search"]:
        shown = forecast([*command.split(), "--help"], project, check=True).stdout
        assert "--json" in shown, command
    for command in ["pipeline", "stage", "runs list", "report", "published", "serve"]:
        assert "--params" in forecast([*command.split(), "--help"], project).stdout, command


def test_bad_params_exit_2_naming_the_key_before_any_work(project: Path):
    bad = project / "bad.yaml"
    bad.write_text("training:\n  epochs: 0\n")
    for command in (["pipeline"], ["stage", "train"], ["report"], ["published"]):
        result = forecast([*command, "--params", str(bad)], project)
        assert result.returncode == 2, (command, result.stderr)
        assert "training.epochs: Input should be greater than or equal to 1" in result.stderr
    assert not (project / "models").exists()  # nothing ran


def test_bad_input_exits_2_with_the_reason(project: Path):
    unknown = forecast(["stage", "nope"], project)
    assert unknown.returncode == 2 and "unknown stage 'nope'; one of" in unknown.stderr
    usage = forecast(["pipeline", "--no-such-flag"], project)
    assert usage.returncode == 2 and "unrecognized arguments" in usage.stderr
    nothing = forecast(["published"], project)  # no store yet
    assert nothing.returncode == 2 and "published" in nothing.stderr
    # The delegated commands keep their modules' messages and give the same code.
    grid = forecast(["search", "--grid", "lookback", "--metric", "lstm.rmse"], project)
    assert grid.returncode == 2 and "must look like section.key=v1,v2" in grid.stderr
    export = forecast(["export"], project)  # no trained model yet
    assert export.returncode == 2 and "nothing exported" in export.stderr
    workers = forecast(["multiworker", "--workers", "1"], project)
    assert workers.returncode == 2 and "--workers must be >= 2" in workers.stderr


@pytest.mark.slow
def test_published_report_and_a_refused_gate(project_after_run: Path):
    project = project_after_run
    shown = json.loads(forecast(["published", "--json"], project, check=True).stdout)
    assert shown["rows"] == 24 and shown["series"] == 1  # forecast.horizon steps of one series
    assert len(shown["forecasts"]) == 24
    for row in shown["forecasts"]:
        assert row["lo_95"] <= row["lo_80"] <= row["forecast"] <= row["hi_80"] <= row["hi_95"]
    assert shown["forecasts"][0]["timestamp"] == "1961-01-01T00:00:00"
    run_key = shown["run"]["run_key"]

    report = json.loads(forecast(["report", "--json"], project, check=True).stdout)
    assert report == {
        "report": "reports/run.html",
        "series": ["airpassengers"],
        "charts": ["Forecast", "Backtest per fold", "Error per horizon step"],
        "not_shown": [],
        "gate_passed": True,
    }
    page = (project / "reports/run.html").read_text()
    assert "Decision: PASSED" in page and page.count("<svg") == 3
    picked = forecast(["report", "--series", "nope", "--out", "other.html"], project)
    assert picked.returncode == 2 and "no series 'nope' in the data" in picked.stderr
    assert not (project / "other.html").exists()

    # A gate no model passes: evaluate decides, publish refuses with exit 3, and nothing
    # published is lost; the report says why.
    update_params(project, {"gate": {"max_mase": 0.001}})
    forecast(["stage", "evaluate"], project, check=True)
    refused = forecast(["stage", "publish", "--json"], project)
    assert refused.returncode == 3, refused.stderr
    assert "NOT PUBLISHED" in refused.stderr and refused.stdout == ""
    page = (project / "reports/run.html").read_text()
    assert "Decision: NOT PUBLISHED" in page and "<td>published_mase_max</td>" in page
    after = json.loads(forecast(["published", "--json"], project, check=True).stdout)
    assert after["run"]["run_key"] == run_key


# `forecast pipeline` refused by the gate (exit 3, --json's empty stdout, the report saying why):
# tests/flows/test_failures.py test_failed_gate_and_bad_data_fail_visibly_and_publish_nothing runs
# that pipeline through this command and checks it with Prefect's view of the same run.

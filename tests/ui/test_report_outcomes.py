"""The run report says how the run ended (issue 24.4), looked at in headless Chromium: for each
outcome (published, ingest refused, gate refused, a stage crashed) the pipeline's end hook
(flows/report.py `write_run_report`) writes the report from real Prefect states and the flow's
progress (flows/outcome.py), on a project holding four series' outputs, one series quarantined
and two published by a candidate. The page says the outcome first, this run's data, this run's
quarantined and fallback series, and marks what an earlier run left."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from prefect.states import Completed, Crashed, Failed

from flows import outcome
from tasks.errors import DataValidationError, GateFailed
from tests.conftest import ROOT
from tests.ui.test_report import _write_outputs

pytestmark = pytest.mark.slow

STAGES = ["ingest", "monitor", "prepare", "train", "evaluate", "publish"]
QUARANTINED = {
    "series": 1,
    "of_series": 5,
    "fraction": 0.2,
    "truncated": False,
    "listed": [{"series_id": "broken", "rows": 30, "failures": 1, "sample": [],
                "reasons": [{"check": "on_grid", "failing": 1,
                             "what": "timestamps off the data.frequency = 1mo grid"}]}],
}  # fmt: skip
SELECTION = {
    "choices": {"north": "lstm", "south": "lstm", "east<b>": "theta", "west": "naive"},
    "reasons": {
        "north": "chosen on 2 folds",
        "south": "chosen on 2 folds",
        "east<b>": "chosen on 2 folds",
        "west": "too short for the LSTM (3 < 120 steps) and for any fold: naive by default",
    },
}
GATE_REFUSAL = "NOT PUBLISHED: published MASE 1.31 above gate.max_mase 1.0"
INGEST_REFUSAL = (
    "ingest: 3 of 5 series failed their checks (more than data.max_bad_series_fraction)"
)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copyfile(ROOT / "params.yaml", project / "params.yaml")
    _write_outputs(project)
    (project / "data/raw").mkdir(parents=True)
    shutil.copyfile(ROOT / "data/raw/airpassengers.csv", project / "data/raw/airpassengers.csv")
    ingest = {"rows": 480, "series": 4, "first_timestamp": "2010-01-01T00:00:00",
              "last_timestamp": "2019-12-01T00:00:00", "quarantined": QUARANTINED}  # fmt: skip
    (project / "metrics/ingest.json").write_text(json.dumps(ingest))
    (project / "models").mkdir()
    (project / "models/selection.json").write_text(json.dumps(SELECTION))
    return project


def _report(project: Path, state, done: list[str], current: str | None, browser) -> str:
    """The end hook's report of a run that ended in `state`, as Chromium shows it."""
    from selenium.webdriver.common.by import By

    from flows.report import write_run_report

    here = Path.cwd()
    os.chdir(project)  # the catalog's paths are relative to the repository root
    try:
        outcome.PROGRESS.update(done=done, current=current)
        write_run_report(None, SimpleNamespace(parameters={"params": "params.yaml"}), state)
    finally:
        os.chdir(here)
    browser.get((project / "reports/run.html").as_uri())
    return browser.find_element(By.TAG_NAME, "body").text


def _first_after_title(text: str) -> str:
    return text.split("\n")[1]


def test_a_published_run(outputs: Path, browser):
    text = _report(outputs, Completed(data={"ran": STAGES}), STAGES, None, browser)
    assert _first_after_title(text).startswith("Published: this run's forecasts")
    assert "This run's data: data/raw/airpassengers.csv (md5 " in text
    assert "4 series, 480 rows, 2010-01-01T00:00:00 to 2019-12-01T00:00:00" in text
    assert "Quarantined by ingest: 1 of 5 series." in text
    assert "broken quarantined on_grid: timestamps off the data.frequency = 1mo grid" in text
    assert "Published by a candidate instead of the LSTM: 2 of 4 series" in text
    assert "east<b> fell back: theta chosen on 2 folds" in text
    assert "west short: naive too short for the LSTM" in text
    assert "Decision: PASSED" in text and "earlier run" not in text
    assert "None reported." not in text


def test_a_run_whose_data_ingest_refused(outputs: Path, browser):
    state = Failed(data=DataValidationError(INGEST_REFUSAL), message="DataValidationError")
    text = _report(outputs, state, [], "ingest", browser)
    first = _first_after_title(text)
    assert first.startswith("Ingest refused this run's data: nothing after ingest ran")
    assert "the published forecasts are unchanged" in first
    assert INGEST_REFUSAL in text
    assert "This run's data: data/raw/airpassengers.csv (md5 " in text
    assert "480 rows" not in text  # the earlier data's summary is not this run's
    assert "Quarantined series: not known for this run's data (ingest did not pass)." in text
    assert "broken" not in text
    # The gate on disk is an earlier run's: no green PASSED that reads as this run's.
    assert "Decision: PASSED" not in text and "An earlier run's decision: passed." in text
    assert "Gate (an earlier run's: this run did not reach evaluate)" in text
    assert "Still published: an earlier run's forecast" in _chart_titles(browser)


def test_a_run_the_gate_refused(outputs: Path, browser):
    gate = {"passed": False, "reasons": [GATE_REFUSAL.removeprefix("NOT PUBLISHED: ")],
            "checks": [{"name": "published_mase_max", "value": 1.31, "threshold": 1.0,
                        "passed": False}]}  # fmt: skip
    (outputs / "metrics/gate.json").write_text(json.dumps(gate))
    state = Failed(data=GateFailed(GATE_REFUSAL), message=f"GateFailed: {GATE_REFUSAL}")
    text = _report(outputs, state, STAGES[:5], "publish", browser)
    first = _first_after_title(text)
    assert first.startswith("NOT PUBLISHED: the gate refused this run's model")
    assert GATE_REFUSAL in text and "Decision: NOT PUBLISHED" in text
    assert "broken quarantined" in text and "east<b> fell back: theta" in text
    assert "earlier run's: this run did not reach evaluate" not in text
    assert "Still published: an earlier run's forecast" in _chart_titles(browser)


def test_a_run_that_crashed_in_a_stage(outputs: Path, browser):
    state = Failed(data=RuntimeError("CUDA error: out of memory"), message="RuntimeError")
    text = _report(outputs, state, STAGES[:3], "train", browser)
    assert _first_after_title(text).startswith("The run failed in stage train")
    assert "CUDA error: out of memory" in text
    assert "broken quarantined" in text  # ingest passed in this run
    assert "Fallback series: not known for this run's data (it did not reach evaluate)." in text
    assert "An earlier run's decision: passed." in text
    killed = _report(outputs, Crashed(message="killed"), [], None, browser)
    assert _first_after_title(killed).startswith("The run crashed (stage unknown)")


def _chart_titles(browser) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(
        t.get_attribute("textContent")
        for t in browser.find_elements(By.CSS_SELECTOR, "figure[data-title='Forecast'] svg text")
    )

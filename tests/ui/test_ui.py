"""The Prefect UI after a pipeline run, driven by headless Chromium: the flow run, its five stages
and its artifacts (metrics, forecasts, chart) are there. Screenshots go to the test's temp dir,
and are copied to FORECAST_UI_SCREENSHOTS when set: `python scripts/refresh_docs_images.py`
refreshes docs/*.png that way; the test itself never writes into the checkout."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from flows import registry
from tests.conftest import run
from tests.flows import api
from tests.ui.chromium import history_bands, not_blank

pytestmark = pytest.mark.slow

STAGES = [s.name for s in registry.stages()]  # every declared stage, in order
ARTIFACT_KEYS = ["forecast-metrics", "forecast-published", "forecast-chart"]


def _text_appears(driver, text: str, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text,
        message=f"{text!r} never appeared on {driver.current_url}",
    )


def _check_screenshot(path: Path) -> None:
    """A PNG of the browser window that shows something (not one flat colour)."""
    from PIL import Image

    data = path.read_bytes()
    width, height = Image.open(path).size
    assert width >= 1000 and height >= 1000, (width, height)
    not_blank(data)


def _keep_screenshot(shot: Path) -> None:
    """Copy to FORECAST_UI_SCREENSHOTS (scripts/refresh_docs_images.py sets it to docs/)."""
    target = os.environ.get("FORECAST_UI_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)


def _click_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    [tab] = [t for t in driver.find_elements(By.CSS_SELECTOR, "li.p-tab") if t.text.strip() == name]
    tab.click()


def test_ui_shows_the_run_its_stages_and_artifacts(
    project_after_run: Path, prefect_env: dict, prefect_server: str, browser, tmp_path: Path
):
    from selenium.webdriver.common.by import By

    project = project_after_run
    run(["python", "-m", "flows.pipeline"], project, env=prefect_env)
    record = json.loads((project / "logs/pipeline-runs.jsonl").read_text().splitlines()[-1])
    run_id, run_name = record["flow_run_id"], record["flow_run_name"]
    ui = prefect_server.removesuffix("/api")

    browser.get(f"{ui}/runs/flow-run/{run_id}")
    _text_appears(browser, run_name)
    _text_appears(browser, "Completed")
    _text_appears(browser, "reused model")  # the log line of an unchanged run

    _click_tab(browser, "Task Runs")
    for stage in STAGES:
        _text_appears(browser, stage)

    _click_tab(browser, "Artifacts")
    for key in ARTIFACT_KEYS:
        _text_appears(browser, key)
    shot = tmp_path / "ui_flow_run.png"
    browser.save_screenshot(str(shot))
    _check_screenshot(shot)
    _keep_screenshot(shot)

    # The chart artifact's page renders the embedded PNG (tasks/charts.py): one panel for the
    # project's one series, and the legend (tests/ui/test_report.py checks several series).
    chart = api.artifacts(prefect_server, run_id)["forecast-chart"]
    browser.get(f"{ui}/artifacts/artifact/{chart['id']}")
    _text_appears(browser, "History and forecast")
    _text_appears(browser, "Series shown (1")
    images = [
        img
        for img in browser.find_elements(By.TAG_NAME, "img")
        if (img.get_attribute("src") or "").startswith("data:image/png;base64,")
    ]
    assert images, "no chart image on the artifact page"
    assert browser.execute_script("return arguments[0].naturalWidth", images[0]) > 100
    png = base64.b64decode(images[0].get_attribute("src").split(",", 1)[1])
    assert history_bands(png) == (1, 1)
    not_blank(images[0].screenshot_as_png)
    shot = tmp_path / "ui_forecast_chart.png"
    browser.save_screenshot(str(shot))
    _check_screenshot(shot)
    _keep_screenshot(shot)

    # The metrics artifact: the table against the baselines and the gate decision.
    metrics = api.artifacts(prefect_server, run_id)["forecast-metrics"]
    browser.get(f"{ui}/artifacts/artifact/{metrics['id']}")
    _text_appears(browser, "seasonal_naive")
    _text_appears(browser, "Decision:")

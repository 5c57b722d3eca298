"""The Prefect UI after a pipeline run, driven by headless Chromium: the flow run, its five stages
and its artifacts (metrics, forecasts, chart) are there. Screenshots go to the test's temp dir,
and are copied to FORECAST_UI_SCREENSHOTS when set: `python scripts/refresh_docs_images.py`
refreshes docs/*.png that way; the test itself never writes into the checkout."""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from flows import registry
from tests.conftest import run
from tests.flows import api

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
STAGES = [s.name for s in registry.stages()]  # every declared stage, in order
ARTIFACT_KEYS = ["forecast-metrics", "forecast-published", "forecast-chart"]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1600",
]


@pytest.fixture
def browser(tmp_path: Path):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        # `./run.sh test` installs them (apt-get, as root); never skip the UI check silently.
        pytest.fail(f"{missing} not installed: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _text_appears(driver, text: str, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text,
        message=f"{text!r} never appeared on {driver.current_url}",
    )


def _check_screenshot(path: Path) -> None:
    """A PNG of the browser window that shows something (not one flat colour)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width >= 1000 and height >= 1000, (width, height)
    idat, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    pixels = zlib.decompress(idat)
    assert len(set(pixels)) > 16, "a blank screenshot"


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

    # The chart artifact's page renders the embedded SVG as an image.
    chart = api.artifacts(prefect_server, run_id)["forecast-chart"]
    browser.get(f"{ui}/artifacts/artifact/{chart['id']}")
    _text_appears(browser, "History and forecast")
    images = [
        img
        for img in browser.find_elements(By.TAG_NAME, "img")
        if (img.get_attribute("src") or "").startswith("data:image/svg+xml")
    ]
    assert images, "no chart image on the artifact page"
    assert browser.execute_script("return arguments[0].naturalWidth", images[0]) > 100
    shot = tmp_path / "ui_forecast_chart.png"
    browser.save_screenshot(str(shot))
    _check_screenshot(shot)
    _keep_screenshot(shot)

    # The metrics artifact: the table against the baselines and the gate decision.
    metrics = api.artifacts(prefect_server, run_id)["forecast-metrics"]
    browser.get(f"{ui}/artifacts/artifact/{metrics['id']}")
    _text_appears(browser, "seasonal_naive")
    _text_appears(browser, "Decision:")

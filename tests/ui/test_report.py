"""The pictures, looked at in headless Chromium: the run report (reports/run.html) and the
Prefect `forecast-chart` artifact, both made by the real `forecast report` command from a
project holding four series' outputs. Checked on the rendered page: not blank, one panel per
series asked for, a legend. The screenshots stay in the test's temp dir (the README's picture
is made by scripts/screenshot.py)."""

from __future__ import annotations

import base64
import json
import math
import shutil
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks import catalog, charts
from tests.conftest import ROOT, base_env, run
from tests.flows import api
from tests.ui.chromium import history_bands, not_blank

pytestmark = pytest.mark.slow

FORECAST = str(Path(sys.executable).parent / "forecast")
LEVELS = {"north": 400.0, "south": 250.0, "east<b>": 120.0, "west": 40.0}  # west: smallest
TOP = 3
LEGEND = ("history", "forecast", "80 % interval", "95 % interval")


def _seasonal(level: float, n: int, start: int = 0) -> list[float]:
    return [level * (1 + 0.002 * (start + i)) * (1 + 0.2 * math.sin(2 * math.pi * (start + i)
            / 12)) for i in range(n)]  # fmt: skip


def _write_outputs(project: Path) -> None:
    """What a pipeline run over four monthly series leaves on disk, at the catalog's paths."""
    hist_ts = pl.datetime_range(datetime(2010, 1, 1), datetime(2019, 12, 1), "1mo", eager=True)
    fc_ts = pl.datetime_range(datetime(2020, 1, 1), datetime(2021, 12, 1), "1mo", eager=True)
    history, forecast, backtest = [], [], []
    for sid, level in LEVELS.items():
        history.append(pl.DataFrame({"series_id": sid, "timestamp": hist_ts,
                                     "value": _seasonal(level, 120)}))  # fmt: skip
        f = np.array(_seasonal(level, 24, 120))
        w = np.linspace(0.05, 0.15, 24) * level
        forecast.append(pl.DataFrame({
            "run_key": "r" * 32, "series_id": sid, "timestamp": fc_ts,
            "horizon_step": range(1, 25), "forecast": f, "lo_80": f - w, "hi_80": f + w,
            "lo_95": f - 1.5 * w, "hi_95": f + 1.5 * w, "model_version": "abc123abc123",
            "git_commit": "c" * 40, "data_md5": "d" * 32, "flow_run_id": "none",
            "published_at": "2020-01-02T00:00:00Z"}))  # fmt: skip
        for fold in range(3):
            a = np.array(_seasonal(level, 24, 96 - 12 * fold))
            backtest.append(pl.DataFrame({
                "fold": fold, "series_id": sid, "timestamp": hist_ts[96 - 12 * fold:][:24],
                "horizon_step": range(1, 25), "actual": a, "lstm": a * 1.03,
                "lo_80": a * 0.95, "hi_80": a * 1.1, "lo_95": a * 0.9, "hi_95": a * 1.15,
                "seasonal_naive": a * 0.9}))  # fmt: skip
    out = {k: project / catalog.path(k) for k in ("validated", "plot_backtest_forecast")}
    for path in out.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    pl.concat(history).write_parquet(out["validated"])
    (project / "published").mkdir()
    pl.concat(forecast).write_parquet(project / "published/forecasts.parquet")
    pl.concat(backtest).write_csv(out["plot_backtest_forecast"])
    pl.DataFrame({"horizon_step": range(1, 25), "lstm": np.linspace(0.4, 0.9, 24),
                  "seasonal_naive": np.linspace(0.9, 1.4, 24)}).write_csv(
        project / catalog.path("plot_horizon_errors"))  # fmt: skip
    (project / "metrics").mkdir()
    scores = {"lstm": {"rmse": 9.0, "mae": 7.0, "smape": 3.0, "mase": 0.6, "coverage_80": 0.79}}
    (project / "metrics/evaluate.json").write_text(json.dumps(scores))
    gate = {
        "passed": True,
        "reasons": [],
        "checks": [{"name": "lstm_mase_max", "value": 0.6, "threshold": 1.0, "passed": True}],
    }
    (project / "metrics/gate.json").write_text(json.dumps(gate))


@pytest.fixture
def four_series(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copyfile(ROOT / "params.yaml", project / "params.yaml")
    _write_outputs(project)
    return project


def forecast_cmd(args: list[str], project: Path, env: dict | None = None) -> dict:
    env = {**(env or base_env()), "PYTHONPATH": str(ROOT)}
    return json.loads(run([FORECAST, *args, "--json"], project, env=env).stdout)


def test_the_report_shows_a_panel_per_series_and_a_legend(four_series: Path, browser, tmp_path):
    from selenium.webdriver.common.by import By

    made = forecast_cmd(["report", "--top", str(TOP)], four_series)
    assert made["series"] == ["north", "south", "east<b>"]  # the three largest, largest first
    browser.get((four_series / made["report"]).as_uri())
    assert "Decision: PASSED" in browser.find_element(By.TAG_NAME, "body").text
    panels = browser.find_elements(By.CSS_SELECTOR, "svg g[id^='forecast-panel-']")
    assert len(panels) == TOP and all(p.size["height"] > 50 for p in panels)
    titles = browser.find_element(By.CSS_SELECTOR, "figure[data-title='Forecast']").text
    assert "east<b>" in titles  # shown as text, not markup
    legend = browser.find_element(By.CSS_SELECTOR, "g#forecast-legend")
    assert all(label in legend.get_attribute("textContent") for label in LEGEND)
    figure = browser.find_element(By.CSS_SELECTOR, "figure[data-title='Forecast'] svg")
    shot = figure.screenshot_as_png
    (tmp_path / "report_forecast.png").write_bytes(shot)
    not_blank(shot)
    assert history_bands(shot) == (TOP, 1)  # what the browser drew: 3 panels, 1 legend
    backtest = browser.find_elements(By.CSS_SELECTOR, "svg g[id^='backtest-panel-']")
    assert len(backtest) == 3 * charts.BACKTEST_TOP  # folds x series
    assert browser.find_elements(By.CSS_SELECTOR, "svg g#horizon-legend")


def test_the_chart_artifact_in_the_prefect_ui(
    four_series: Path, prefect_env: dict, prefect_server: str, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    made = forecast_cmd(["report", "--top", str(TOP), "--artifact"], four_series, prefect_env)
    assert len(made["series"]) == TOP
    found = api.post(prefect_server, "/artifacts/filter",
                     {"artifacts": {"key": {"any_": ["forecast-chart"]}}, "sort": "CREATED_DESC",
                      "limit": 10})  # fmt: skip
    [artifact] = [a for a in found if "`east<b>`" in a["data"]][:1]
    ui = prefect_server.removesuffix("/api")
    browser.get(f"{ui}/artifacts/artifact/{artifact['id']}")
    body = browser.find_element(By.TAG_NAME, "body")
    WebDriverWait(browser, 30).until(lambda d: f"Series shown ({TOP}" in body.text)
    assert "east<b>" in body.text and "Legend: history" in body.text

    def chart():
        return [i for i in browser.find_elements(By.TAG_NAME, "img")
                if (i.get_attribute("src") or "").startswith("data:image/png;base64,")]  # fmt: skip

    WebDriverWait(browser, 30).until(lambda d: chart(), message="no chart image on the page")
    [img] = chart()
    assert browser.execute_script("return arguments[0].naturalWidth", img) == 1000
    png = base64.b64decode(img.get_attribute("src").split(",", 1)[1])
    assert history_bands(png) == (TOP, 1)
    shot = img.screenshot_as_png  # what the UI shows of it
    (tmp_path / "artifact_chart.png").write_bytes(shot)
    not_blank(shot)

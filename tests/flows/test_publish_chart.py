"""A chart the publish stage cannot draw never fails the publish (issue 25.7): the stage logs a
warning and publishes the forecasts with a blank image plot."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl
import pytest

from flows.stages import __main__ as stages
from flows.stages.publish import BLANK_PNG

pytestmark = pytest.mark.slow


def test_a_chart_failure_publishes_the_forecasts_without_the_image(
    project_after_run: Path, monkeypatch, caplog
):
    from tasks import charts

    project = project_after_run
    monkeypatch.chdir(project)
    monkeypatch.setenv("FORECAST_PREFECT", "never")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)

    def cannot_draw(*args, **kwargs):
        raise ValueError("year 10000 is out of range")  # what matplotlib said past 9999

    monkeypatch.setattr(charts, "forecast_chart", cannot_draw)
    (project / "metrics" / "publish.json").unlink()
    (project / "published" / "forecasts.parquet").unlink()
    with caplog.at_level(logging.WARNING, logger="forecast"):
        assert stages.main(["publish"]) == 0
    assert "forecast chart could not be drawn (ValueError: year 10000" in caplog.text
    assert (project / "plots" / "forecast.png").read_bytes() == BLANK_PNG
    summary = json.loads((project / "metrics" / "publish.json").read_text())
    assert summary["run_key"]
    assert pl.read_parquet(project / "published" / "forecasts.parquet").height > 0

"""Fixtures of the UI tests: one headless Chromium per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui import chromium


@pytest.fixture
def browser(tmp_path: Path):
    if chromium.missing():
        # `./run.sh test` installs them (apt-get, as root); never skip the UI check silently.
        pytest.fail(f"{chromium.missing()} not installed: apt-get install chromium chromium-driver")
    driver = chromium.driver(tmp_path / "chromium-profile")
    yield driver
    driver.quit()

"""Headless Chromium through chromedriver (Debian packages `chromium`, `chromium-driver`), shared
by the UI tests and scripts/screenshot.py: one place for the flags that make it run in a
container without a display, a sandbox or network access; and the checks of a picture."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# The history line of tasks/charts.py (charts.HISTORY), as RGB.
HISTORY_RGB = (0x1F, 0x77, 0xB4)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing() -> list[str]:
    return [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]


def driver(profile: Path, width: int = 1400, height: int = 1600):
    """A new headless Chromium (quit it when done); `profile`: a fresh user-data dir."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in [*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(60)
    return d


def history_bands(png: bytes) -> tuple[int, int]:
    """(panels, legend swatches) in a picture of the forecast chart: pixel rows holding the
    history colour come in tall bands (a panel's line) and one short band (the legend's
    swatch, a horizontal stroke) below them."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    rows = (np.abs(img - np.array(HISTORY_RGB)).sum(axis=2) <= 40).any(axis=1)
    bands, start = [], None
    for y, hit in enumerate([*rows, False]):
        if hit and start is None:
            start = y
        elif not hit and start is not None:
            bands.append(y - start)
            start = None
    return sum(h > 20 for h in bands), sum(h <= 6 for h in bands)


def not_blank(png: bytes) -> None:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.width > 300 and img.height > 200, img.size
    assert len(img.getcolors(maxcolors=1 << 20) or []) > 16, "a blank picture"

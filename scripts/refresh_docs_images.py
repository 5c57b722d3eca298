"""Refresh the README's Prefect UI screenshots (docs/ui_flow_run.png, docs/ui_forecast_chart.png).

    ./run.sh python scripts/refresh_docs_images.py

Runs the UI test (tests/ui/test_ui.py: a real Prefect server, a pipeline run, headless
Chromium) with FORECAST_UI_SCREENSHOTS pointing at docs/, so the test copies its checked
screenshots there. The test suite itself writes screenshots only to temp dirs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    env = {**os.environ, "FORECAST_UI_SCREENSHOTS": str(ROOT / "docs")}
    cmd = [sys.executable, "-m", "pytest", "tests/ui/test_ui.py", "-q", "-p", "no:cacheprovider"]
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    if code == 0:
        print(f"refreshed {', '.join(sorted(p.name for p in (ROOT / 'docs').glob('ui_*.png')))}")
    return code


if __name__ == "__main__":
    sys.exit(main())

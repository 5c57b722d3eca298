"""The README's picture of the run report: `docs/report.png`.

    ./run.sh python scripts/screenshot.py [--params params.yaml] [--out docs/report.png]

Opens the report the last pipeline run wrote (reports/run.html: its outcome first), or with
--on-demand renders the report of this checkout's current outputs (flows/report.py) into a temp
file, in headless Chromium (tests/ui/chromium.py) and saves the page as a PNG. Run it after a
pipeline run; the tests never write docs/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a file: the project's packages are importable

WIDTH = 1200
MAX_HEIGHT = 4000  # px: the whole report at this width, cut if a long status table follows


def main(argv: list[str] | None = None) -> int:
    from flows.report import write_report
    from tasks.config import DEFAULT_PARAMS, load_config
    from tests.ui import chromium

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument(
        "--on-demand", action="store_true", help="render the outputs on disk, not the run's report"
    )
    args = parser.parse_args(argv)
    if chromium.missing():
        print(f"{chromium.missing()} not installed: apt-get install chromium chromium-driver")
        return 2
    with tempfile.TemporaryDirectory(prefix="report-shot-") as tmp:
        ran = ROOT / "reports" / "run.html"
        if ran.exists() and not args.on_demand:
            report, shown = ran, "the last run's report"
        else:
            report, data = write_report(load_config(args.params), Path(tmp) / "run.html")
            shown = f"report with {len(data.charts)} charts, series {data.series_shown}"
        browser = chromium.driver(Path(tmp) / "profile", WIDTH, 1000)
        try:
            browser.get(report.as_uri())
            browser.execute_script("document.documentElement.style.overflow = 'hidden'")  # no bar
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(WIDTH, min(int(height) + 40, MAX_HEIGHT))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(args.out))
        finally:
            browser.quit()
    print(f"wrote {args.out}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

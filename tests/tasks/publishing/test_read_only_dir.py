"""A `published/` directory the publishing user may not write (issue 25, untried case): mode
0555, checked by the kernel's permission rules, not by a read-only mount (test_store.py has
that). Root passes every permission check, so as root the publish runs with the capabilities
that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) dropped: the checks of a non-root user
(no other user can run this venv's Python, which lies under /root)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tasks.publishing.store import publish_forecasts
from tests.tasks.publishing.test_store import _forecasts, _lineage
from tests.waits import HANG_S

ROOT = Path(__file__).resolve().parents[3]

PUBLISH = """
import sys
from pathlib import Path
from tests.tasks.publishing.test_store import _forecasts, _lineage
from tasks.errors import PipelineError
from tasks.publishing.store import publish_forecasts
d = Path(sys.argv[1])
try:
    publish_forecasts(_forecasts(1.0), _lineage("n" * 32), d / "forecasts.sqlite",
                      d / "forecasts.parquet")
except PipelineError as err:
    print(f"{type(err).__name__}: {err}", file=sys.stderr)
    sys.exit(2)
"""


def _as_unprivileged(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to drop root's permission bypass")
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *args]


def _hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


@pytest.fixture
def published():
    # Not under pytest's tmp_path: a 0700 directory of root's, which the dropped capabilities
    # could not enter.
    base = Path(tempfile.mkdtemp(prefix="forecast-ro-"))
    base.chmod(0o755)
    yield base / "published"
    (base / "published").chmod(0o755)
    shutil.rmtree(base)


def test_a_published_dir_the_user_cannot_write_fails_naming_the_file_and_changes_nothing(
    published: Path,
):
    published.mkdir()
    publish_forecasts(_forecasts(), _lineage(), published / "forecasts.sqlite",
                      published / "forecasts.parquet")  # fmt: skip
    before = _hashes(published)
    published.chmod(0o555)
    done = subprocess.run(
        _as_unprivileged([sys.executable, "-c", PUBLISH, str(published)]),
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_S,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"PublishWriteError: cannot write {published / 'forecasts.sqlite'}" in done.stderr
    assert "nothing was published (every published file is as it was)" in done.stderr
    assert _hashes(published) == before  # no temp, journal or lock file left either
    published.chmod(0o755)  # writable again: the same publish goes through
    publish_forecasts(_forecasts(1.0), _lineage("n" * 32), published / "forecasts.sqlite",
                      published / "forecasts.parquet")  # fmt: skip
    assert _hashes(published) != before

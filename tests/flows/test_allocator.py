"""flows/__init__.py: every `python -m flows.*` process starts with polars' jemalloc set to hand
freed pages back at once (the scale benchmark's memory budget depends on it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flows import JEMALLOC_CONF, JEMALLOC_ENV

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys, os, flows.stages; import polars; "
    f"print(os.environ.get({JEMALLOC_ENV!r}), 'polars' in sys.modules)"
)


def _probe(env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_entry_points_configure_the_allocator_before_polars_loads():
    env = {k: v for k, v in os.environ.items() if k != JEMALLOC_ENV}
    # polars appends the value it finds to its own defaults (later options win in jemalloc).
    conf, loaded = _probe(env).split()
    assert conf.endswith("," + JEMALLOC_CONF) and loaded == "True"


def test_a_setting_from_the_environment_wins():
    env = {**os.environ, JEMALLOC_ENV: "dirty_decay_ms:5000"}
    conf, _ = _probe(env).split()
    assert conf.endswith(",dirty_decay_ms:5000")

"""Atomic writes keep the permissions a plain write would give (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tasks import io


def test_atomic_writes_get_the_umask_mode_not_0600(tmp_path: Path):
    target = tmp_path / "published" / "forecasts.parquet"
    io.write_atomic(target, lambda tmp: tmp.write_bytes(b"new"))
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~io.UMASK
    # Replacing an existing file keeps to the same rule.
    os.chmod(target, 0o600)
    io.write_json(target, {"a": 1})
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~io.UMASK
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]

"""File I/O at the stage edges: every write goes to a temp file beside the target, is fsynced and
renamed into place, so a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it: set straight back, once, at import
    os.umask(mask)
    return mask


UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600; the replaced file gets what a plain open() would give it
        # (0666 less the umask: 0644 usually), so other readers of published files still can.
        os.chmod(tmp_path, 0o666 & ~UMASK)
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(target: str | Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp_path)` and move the result onto `target` atomically."""
    with atomic_path(target) as tmp:
        write(tmp)


def _finite_or_null(obj: object) -> object:
    """NaN and inf become null: strict JSON readers (DVC's metrics, browsers) reject them."""
    if hasattr(obj, "item") and not hasattr(obj, "__len__"):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_null(v) for v in obj]
    return obj


def write_json_to(path: str | Path, payload: object) -> None:
    """Write JSON in place (to a temp file someone else renames: write_json is atomic)."""
    text = json.dumps(_finite_or_null(payload), indent=2, sort_keys=True, allow_nan=False) + "\n"
    Path(path).write_text(text)


def write_json(target: str | Path, payload: object) -> None:
    write_atomic(target, lambda p: write_json_to(p, payload))


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file's bytes: the hash DVC 3 records for a file in dvc.lock."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()

"""A copy of this project as a fresh clone has it, in its own git repository: what the tests'
`make_project` and benchmarks/many_series.py run the pipeline in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Stage outputs of the developer's own runs are not part of a fresh clone.
GENERATED = (
    "dvc.lock",
    "metrics",
    "plots",
    "published",
    "models",
    "data/validated",
    "data/prepared",
    "checkpoints",
    "logs",
    "reports",
)


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def fresh_copy(dest: Path, root: Path = ROOT) -> Path:
    """The project's files (tracked, and untracked ones git does not ignore) under `dest`,
    without the generated outputs."""
    files = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    for rel in filter(None, files.split("\0")):
        src = root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for rel in GENERATED:
        target = dest / rel
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return dest


def init_repo(dest: Path, message: str = "project copy") -> Path:
    """`dest` as a new git repository (branch main) with everything in it committed."""
    _git(["init", "-q", "-b", "main"], dest)
    _git(["config", "user.email", "test@example.com"], dest)
    _git(["config", "user.name", "test"], dest)
    _git(["add", "-A"], dest)
    _git(["commit", "-qm", message], dest)
    return dest

"""The one git runner of the pipeline (orchestration layer: the pure layer in tasks/ runs no
subprocess). Versioning (flows/versioning.py) records and restores runs through it; publish
asks it for the commit a forecast's lineage names (`head_commit`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tasks.errors import PipelineError


class GitError(PipelineError):
    """git refused a command the pipeline needed."""


def git(
    args: list[str], root: str | Path | None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `git ARGS` in `root` (None: the current directory) and capture its text output.

    check: raise GitError naming the command and git's message when it exits non-zero.
    A missing git executable raises FileNotFoundError, a hung one subprocess.TimeoutExpired.
    """
    proc = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def head_commit(root: str | Path | None = None) -> str:
    """HEAD's hash, with "-dirty" when tracked files differ from it; "unknown" outside git or
    without git installed."""
    try:
        head = git(["rev-parse", "HEAD"], root, check=False, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    commit = head.stdout.strip()
    try:
        # dvc.lock is rewritten by every `dvc repro` itself: changes there say nothing about
        # the code.
        diff = git(
            ["diff", "--quiet", "HEAD", "--", ".", ":!dvc.lock"], root, check=False, timeout=30
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return commit
    # Exit 1 means differences; other failures (exit 128) we cannot judge, so no suffix.
    if diff.returncode == 1:
        commit += "-dirty"
    return commit

"""Where a published forecast came from: code commit, input hashes, model version, flow run."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from tasks.io import md5_file

LINEAGE_FIELDS = (
    "model_version",
    "git_commit",
    "data_md5",
    "params_md5",
    "model_md5",
    "flow_run_id",
    "published_at",
)


def _git(args: list[str], cwd: Path | None) -> subprocess.CompletedProcess[str] | None:
    """Run git; None when git is not installed."""
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=30
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None


def git_commit(cwd: Path | None = None) -> str:
    """HEAD's hash, with "-dirty" when tracked files differ from it; "unknown" outside git."""
    head = _git(["rev-parse", "HEAD"], cwd)
    if head is None or head.returncode != 0:
        return "unknown"
    commit = head.stdout.strip()
    # dvc.lock is rewritten by every `dvc repro` itself: changes there say nothing about the code.
    diff = _git(["diff", "--quiet", "HEAD", "--", ".", ":!dvc.lock"], cwd)
    # Exit 1 means differences; other failures (exit 128) we cannot judge, so no suffix.
    if diff is not None and diff.returncode == 1:
        commit += "-dirty"
    return commit


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def collect_lineage(
    data: Path, params: Path, model: Path, flow_run_id: str | None, cwd: Path | None = None
) -> dict[str, str]:
    """Lineage of one publish. The md5s equal the ones DVC records in dvc.lock for these files."""
    model_md5 = md5_file(model)
    return {
        "model_version": model_md5[:12],
        "git_commit": git_commit(cwd),
        "data_md5": md5_file(data),
        "params_md5": md5_file(params),
        "model_md5": model_md5,
        "flow_run_id": str(flow_run_id) if flow_run_id is not None else "none",
        "published_at": utc_now(),
    }

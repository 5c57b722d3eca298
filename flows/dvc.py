"""DVC as the pipeline's source of truth for what is up to date (orchestration layer)."""

from __future__ import annotations

from pathlib import Path


def _repo(root: Path):
    from dvc.repo import Repo

    return Repo(str(root))


def stage_changed(stage: str, root: Path = Path(".")) -> bool:
    """True when DVC sees a change in the stage's deps, params, outputs or command."""
    with _repo(root) as repo:
        return bool(repo.status(targets=[stage]))


def record_stage(stage: str, root: Path = Path(".")) -> None:
    """Write the stage's current dep/out hashes to dvc.lock and its outputs to the DVC cache."""
    with _repo(root) as repo:
        repo.commit(stage, force=True)

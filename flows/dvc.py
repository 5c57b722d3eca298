"""DVC as the pipeline's source of truth for what is up to date (orchestration layer).

Every DVC call of the pipeline goes through `call`/`open_repo`: inside
`flows.repolock.repository_lock` they reuse the holder's Repo, which already holds DVC's
repository lock for the whole command (a second Repo in this process would fail to lock it
again); outside, `call` waits on DVC's lock, bounded and naming the holder, instead of DVC's
uncaught LockError after 3 s.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from flows.repolock import RepositoryLocked, describe_dvc_holder, held_repo, timeout_s


@contextlib.contextmanager
def open_repo(root: Path = Path(".")) -> Iterator:
    held = held_repo(root)
    if held is not None:
        # What DVC's own lock_repo does before every locked call: drop the cached index and
        # config, which earlier stages of this run have changed (dvc.lock, outputs).
        held._reset()
        yield held
        return
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        yield repo


def call(root: Path, fn):
    """fn(repo): in the holder's Repo, else in a new one, retried while another process holds
    DVC's lock (a `dvc repro`), bounded and naming that process when it does not let go."""
    from dvc.lock import LockError

    deadline = time.monotonic() + timeout_s()
    lockfile = Path(root) / ".dvc" / "tmp" / "lock"
    while True:
        try:
            with open_repo(root) as repo, _quiet_dvc():
                lockfile = Path(repo.lock.lockfile)
                return fn(repo)
        except LockError:  # after DVC's own 3 s of retries
            if time.monotonic() >= deadline:
                raise RepositoryLocked(
                    f"DVC's lock {lockfile} is still held by {describe_dvc_holder(lockfile)} "
                    f"after {timeout_s():g} s; if that process is hung, stop it"
                ) from None


@contextlib.contextmanager
def _quiet_dvc() -> Iterator[None]:
    """DVC's INFO lines ("Updating lock file 'dvc.lock'") off stdout while it works for the
    pipeline: importing dvc sends its INFO to stdout, where `forecast pipeline` prints its own
    summary (`--json`: the one JSON document). Its warnings and errors still go to stderr."""
    dvc_log = logging.getLogger("dvc")
    saved = dvc_log.level
    dvc_log.setLevel(max(saved, logging.WARNING))
    try:
        yield
    finally:
        dvc_log.setLevel(saved)


def stage_changed(stage: str, root: Path = Path(".")) -> bool:
    """True when DVC sees a change in the stage's deps, params, outputs or command."""
    return bool(call(root, lambda repo: repo.status(targets=[stage])))


def record_stage(stage: str, root: Path = Path(".")) -> None:
    """Write the stage's current dep/out hashes to dvc.lock and its outputs to the DVC cache."""
    call(root, lambda repo: repo.commit(stage, force=True))

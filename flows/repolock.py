"""One mutating command at a time per repository: the pipeline, the stage runner, rollback, and
DVC's own commands (`dvc repro`, `dvc exp run`).

Two locks, always taken in this order, so no two commands can wait on each other:
  1. the forecast lock (`pipeline_lock`, an flock): which of our commands holds the repository;
     the file names the holder (pid, command, since when) for the next one's messages;
  2. DVC's repository lock (`.dvc/tmp/lock`), held for the whole command, not only while a DVC
     call runs. That is what serialises us with `dvc repro` and `dvc exp run`, which hold it for
     their whole run: while the pipeline runs, they stop after DVC's 3 s wait with DVC's lock
     message (`dvc --wait-for-lock repro` waits for the pipeline); while they run, the pipeline
     waits here and says for whom.
The DVC calls of the holder go through flows/dvc.py, which reuses the holder's DVC Repo instead
of locking again.

A command started *by* a holder is covered by it and takes nothing (it would deadlock on its
parent): the stage runner under DVC (DVC sets DVC_STAGE for stage commands and runs them only
under its repository lock), and any child of a holder (the holder exports HOLDER_ENV = its pid).

Waiting is bounded: after FORECAST_LOCK_TIMEOUT_S seconds (default 2 h) a lock still held (a
hung process) ends the waiting command with RepositoryLocked naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tasks import catalog
from tasks.errors import PipelineError
from tasks.textfmt import clip

TIMEOUT_ENV = "FORECAST_LOCK_TIMEOUT_S"
HOLDER_ENV = "FORECAST_REPO_LOCK_HOLDER"
DEFAULT_TIMEOUT_S = 7200.0
POLL_S = 0.5


class RepositoryLocked(PipelineError):
    """Another command held the repository past the lock timeout."""


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise RepositoryLocked(f"{TIMEOUT_ENV}={raw!r}: give a number of seconds") from None


# ---------------------------------------------------------------- who holds it
def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    words = " ".join(a.decode(errors="replace") for a in raw.split(b"\0") if a)
    return clip(re.sub(r"\s+", " ", words).strip(), 200)  # one line, bounded


def _ancestors() -> set[int]:
    """This process's ancestors (Linux /proc; empty elsewhere)."""
    found, pid = set(), os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
    return found


def _since(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _forecast_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe_forecast_holder(path: Path) -> str:
    h = _forecast_holder(path)
    if not h:
        return f"an unknown process (see {path})"
    return f"pid {h.get('pid')} (`{h.get('command')}`, since {h.get('since')})"


def describe_dvc_holder(lockfile: Path) -> str:
    try:
        text = lockfile.read_text()
        since = _since(lockfile.stat().st_mtime)  # zc.lockfile writes the pid on acquiring
    except OSError:
        return f"an unknown process (see {lockfile})"
    match = re.search(r"\d+", text)
    if not match:
        return f"an unknown process (see {lockfile})"
    pid = int(match.group())
    return f"pid {pid} (`{_cmdline(pid)}`, since {since})"


def covered() -> bool:
    """True when a command that started this one holds the repository for it."""
    if os.environ.get("DVC_STAGE"):
        return True  # a dvc.yaml stage command: DVC holds its lock for the whole repro
    holder = os.environ.get(HOLDER_ENV, "")
    if not holder.isdigit():
        return False
    pid = int(holder)
    recorded = _forecast_holder(catalog.path("pipeline_lock")).get("pid")
    return recorded == pid and (pid == os.getpid() or pid in _ancestors())


# ---------------------------------------------------------------- taking it
def _wait(try_once, describe, what: str, purpose: str, logger, deadline: float):
    """Call try_once() until it returns something other than None, or fail at the deadline."""
    warned = False
    while True:
        got = try_once()
        if got is not None:
            return got
        if time.monotonic() >= deadline:
            raise RepositoryLocked(
                f"{purpose}: {what} is still held by {describe()} after {timeout_s():g} s; "
                f"if that process is hung, stop it (kill PID) and run again "
                f"({TIMEOUT_ENV} sets the wait)"
            )
        if not warned and logger is not None:
            logger.warning("%s: %s is held by %s: waiting for it", purpose, what, describe())
            warned = True
        time.sleep(POLL_S)


@contextlib.contextmanager
def _forecast_lock(root: Path, purpose: str, logger, deadline: float) -> Iterator[None]:
    path = Path(root) / catalog.path("pipeline_lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:

        def try_once():
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            return True

        what = f"the repository lock {path}"
        _wait(try_once, lambda: describe_forecast_holder(path), what, purpose, logger, deadline)
        fh.seek(0)
        fh.truncate()
        me = os.getpid()
        fh.write(json.dumps({"pid": me, "command": _cmdline(me), "since": _since(time.time())}))
        fh.flush()
        yield  # closing the file releases the flock (and so does the death of the process)


@contextlib.contextmanager
def _dvc_lock(root: Path, purpose: str, logger, deadline: float):
    from dvc.exceptions import NotDvcRepoError
    from dvc.lock import LockError
    from dvc.repo import Repo, lock_repo
    from dvc.scm import SCMError

    try:
        repo = Repo(str(root))
    except (NotDvcRepoError, SCMError):  # .dvc without git: no DVC lock to share
        yield None
        return
    lockfile = Path(repo.lock.lockfile)

    def try_once():
        held = lock_repo(repo)
        try:
            held.__enter__()
        except LockError:
            return None
        return held

    try:
        holder = lambda: describe_dvc_holder(lockfile)  # noqa: E731
        held = _wait(try_once, holder, f"DVC's lock {lockfile}", purpose, logger, deadline)
        try:
            yield repo
        finally:
            held.__exit__(None, None, None)
    finally:
        repo.close()


# The holder's DVC Repo per repository root: flows/dvc.py runs every DVC call of this process in
# it (a second Repo would fail to take the lock the holder has). Kept here, not in flows/dvc.py,
# so the imports go one way: dvc -> repolock.
_HELD: dict[Path, object] = {}


@contextlib.contextmanager
def holding(root: Path, repo) -> Iterator[None]:
    """Make `repo` (whose lock the caller holds) the Repo of every DVC call under `root`."""
    key = Path(root).resolve()
    _HELD[key] = repo
    try:
        yield
    finally:
        _HELD.pop(key, None)


def held_repo(root: Path) -> object | None:
    """The Repo `repository_lock` holds for `root` in this process, if any."""
    return _HELD.get(Path(root).resolve())


@contextlib.contextmanager
def repository_lock(purpose: str, root: Path = Path("."), logger=None) -> Iterator[None]:
    """Hold the repository for `purpose` (what the messages call this command); see the module
    docstring. Re-entrant within a process and free for commands a holder started."""
    if covered() or not (Path(root) / ".dvc").is_dir():
        yield  # held for us already; or no DVC project here (a stage run in a bare directory)
        return
    deadline = time.monotonic() + timeout_s()
    with (
        _forecast_lock(root, purpose, logger, deadline),
        _dvc_lock(root, purpose, logger, deadline) as repo,
    ):
        previous = os.environ.get(HOLDER_ENV)
        os.environ[HOLDER_ENV] = str(os.getpid())
        try:
            with holding(root, repo) if repo else contextlib.nullcontext():
                yield
        finally:
            if previous is None:
                os.environ.pop(HOLDER_ENV, None)
            else:
                os.environ[HOLDER_ENV] = previous

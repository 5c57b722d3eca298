"""All-or-nothing replacement of several files (a publish: store, export, champion, metrics).

    with Transaction(journal) as txn:
        txn.write(store, fill_store)      # each to a temp file beside its target, fsynced
        txn.write(export, fill_export)
        txn.commit()                      # journal, then one rename per file, then no journal

1. Stage: every new file is written to a temp file beside its target (same directory, so the
   rename below cannot fail for space or cross devices) and fsynced. A write that fails (disk
   full, read-only) removes every temp and raises PublishWriteError naming the file: every
   target is untouched.
2. Commit: the journal (the temp -> target pairs) is written atomically; it is the commit point.
   Then each temp is renamed over its target, and the journal removed.
   With a database in the transaction (the forecast store, tasks/publishing/store.py: written in
   place in one open database transaction, never copied), the journal also names the store (its URL
   template, never the expanded URL) and the run key and publish sequence number being written;
   the database COMMIT right after the journal is then the commit point, and the renames follow.
3. Recover (`recover(journal)`, at the start of every publish, pipeline run and rollback): a
   journal left by a process killed during 2 is rolled forward (its remaining temps renamed),
   so the targets end all new; a journal naming a database run that the database does not hold
   (killed before the COMMIT: the database rolled it back) is discarded with its temps instead.
   Without a journal, leftover temps are a publish killed before its commit point and are
   deleted, the targets being all old. A reader between the kill and the next start can see the
   store new and the export not yet: the next start completes it.

Fault points (tasks/faults.py): `publish.staged.<file name>` after each temp is written,
`publish.journal` once the journal is written, `publish.committed` after the database COMMIT
(with a database), `publish.renamed.<file name>` after each rename.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy.exc

from tasks.errors import PipelineError
from tasks.faults import fault_point
from tasks.io import UMASK, atomic_path

FILE_MODE = 0o666 & ~UMASK  # what a plain open() gives: 0644 under the usual umask


class PublishWriteError(PipelineError):
    """A file of the publish could not be written (disk full, read-only): nothing published."""


def _is_io(err: BaseException) -> bool:
    """A failure of the disk, not of the code: OSError, SQLite's "database or disk is full",
    a Polars write error wrapping an OS error."""
    if isinstance(err, OSError | sqlite3.OperationalError | sqlalchemy.exc.OperationalError):
        return True
    return "os error" in str(err).lower()


DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def disk_error(err: BaseException) -> str | None:
    """One line for a full, read-only or forbidden disk (naming the path where the error has
    one), None for any other error: entry points print it instead of a traceback."""
    for e in (err, err.__cause__, err.__context__):
        e = getattr(e, "orig", e)  # SQLAlchemy wraps the driver's error
        if isinstance(e, PublishWriteError):
            return str(e)
        if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
            where = f"cannot write {e.filename}" if e.filename else "cannot write"
            return f"{where}: {e.strerror}"
        if isinstance(e, sqlite3.OperationalError) and (
            "disk is full" in str(e) or "readonly" in str(e)
        ):
            return f"cannot write a SQLite database: {e}"
    return None


def user_error(err: BaseException) -> str | None:
    """The one line an entry point ends with (exit 2) instead of a traceback: a PipelineError's
    text or a disk error (disk_error); None for anything unexpected."""
    return str(err) if isinstance(err, PipelineError) else disk_error(err)


def _reason(err: BaseException, where: Path | None = None) -> str:
    err = getattr(err, "orig", err)  # SQLAlchemy wraps the driver's error
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, sqlite3.OperationalError) and where is not None:
        # SQLite says "database or disk is full" / "readonly database": name the OS condition.
        if "disk is full" in text:
            return f"{os.strerror(errno.ENOSPC)} ({text})"
        if "readonly" in text and _read_only(where):
            return f"{os.strerror(errno.EROFS)} ({text})"
    return text


def _read_only(path: Path) -> bool:
    for p in (path, *path.parents):
        if p.exists():
            return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stale_temps(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*"))


@dataclass
class DatabaseWrite:
    """The open database transaction of a publish: committed right after the journal (the
    commit point), rolled back on any failure before it. `marker` goes into the journal:
    {"url": template, "file": path or None, "run_key": ..., "publish_seq": ...}."""

    marker: dict
    commit: Callable[[], None]
    rollback: Callable[[], None]


class Transaction:
    def __init__(self, journal: str | Path):
        self.journal = Path(journal)
        self.staged: list[tuple[Path, Path]] = []  # (temp, target)
        self.committed = False
        self.database: DatabaseWrite | None = None

    def bind_database(self, write: DatabaseWrite) -> None:
        """Make an open database transaction part of this one (at most one)."""
        if self.database is not None:
            raise RuntimeError("a publish writes one database")
        self.database = write

    def __enter__(self) -> Transaction:
        recover(self.journal)
        return self

    def __exit__(self, typ, value, tb) -> None:
        if not self.committed:
            self.abort()

    def abort(self) -> None:
        if self.database is not None:
            database, self.database = self.database, None
            database.rollback()
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}-journal").unlink(missing_ok=True)  # sqlite's, should it be left
        self.staged.clear()

    def _failed(self, target: Path | str, err: BaseException) -> PublishWriteError:
        self.abort()
        where = Path(target) if isinstance(target, Path) else None
        return PublishWriteError(
            f"cannot write {target}: {_reason(err, where)}; nothing was published "
            "(every published file is as it was)"
        )

    def failed(self, target: Path | str, err: BaseException) -> PublishWriteError:
        """Abort, and the error to raise for a write of `target` that failed with `err`."""
        return self._failed(target, err)

    def temp_for(self, target: str | Path) -> Path:
        """A new empty temp file beside `target`, to be renamed over it at commit."""
        target = Path(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            for stale in stale_temps(target):  # a publish killed before its commit point
                stale.unlink(missing_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent
            )
            os.close(fd)
        except OSError as err:
            raise self._failed(target, err) from err
        self.staged.append((Path(tmp), target))
        return Path(tmp)

    def write(self, target: str | Path, fill: Callable[[Path], object]) -> object:
        """Call fill(temp) for `target`'s new content; returns what fill returned."""
        target = Path(target)
        tmp = self.temp_for(target)
        try:
            result = fill(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; published files are 0644
        except Exception as err:
            if not _is_io(err):
                self.abort()
                raise
            raise self._failed(target, err) from err
        fault_point(f"publish.staged.{target.name}")
        return result

    def commit(self) -> None:
        pairs = [[str(tmp), str(target)] for tmp, target in self.staged]
        content: object = pairs
        if self.database is not None:
            content = {"pairs": pairs, "database": self.database.marker}
        try:
            with atomic_path(self.journal) as tmp:
                tmp.write_text(json.dumps(content) + "\n")
        except OSError as err:
            raise self._failed(self.journal, err) from err
        fault_point("publish.journal")
        if self.database is not None:
            database = self.database
            try:
                database.commit()
            except Exception as err:
                # From here the journal owns the temps: abort() must not delete them.
                self.database, self.committed = None, True
                self.staged.clear()
                store = database.marker["store"]
                try:
                    # Did the COMMIT land? The database says (a lost connection may hide it).
                    rolled_forward = _resolve(self.journal, content)
                except Exception:
                    raise PublishWriteError(
                        f"cannot tell whether {store} committed ({_reason(err)}): the next "
                        f"publish, pipeline run or rollback resolves it from {self.journal}"
                    ) from err
                if rolled_forward is None:
                    raise PublishWriteError(
                        f"cannot write {store}: {_reason(err)}; nothing was published (every "
                        "published file is as it was)"
                    ) from err
                return
            self.database = None
            fault_point("publish.committed")
        self.committed = True  # from here on, forward only: recover() finishes what is left
        _roll_forward(self.journal, pairs)
        self.staged.clear()


def _roll_forward(journal: Path, pairs: list[list[str]]) -> list[str]:
    done = []
    for tmp, target in pairs:
        if Path(tmp).exists():
            os.replace(tmp, target)
            done.append(target)
            fault_point(f"publish.renamed.{Path(target).name}")
    for directory in {Path(target).parent for _, target in pairs}:
        _fsync(directory)
    journal.unlink()
    _fsync(journal.parent)
    return done


def _discard(journal: Path, pairs: list[list[str]]) -> None:
    for tmp, _ in pairs:
        Path(tmp).unlink(missing_ok=True)
    journal.unlink()
    _fsync(journal.parent)


def _resolve(journal: Path, content) -> list[str] | None:
    """A journal naming a database run: roll forward if the database committed it (returns
    the files renamed), discard it and its temps if not (returns None)."""
    from tasks.publishing.db import holds_publish

    pairs, marker = content["pairs"], content["database"]
    if holds_publish(marker):
        return _roll_forward(journal, pairs)
    _discard(journal, pairs)
    return None


def recover(journal: str | Path) -> list[str]:
    """Finish a publish killed after its commit point (returns the files it renamed), or
    discard one killed before its database COMMIT (returns [])."""
    journal = Path(journal)
    if not journal.exists():
        return []
    content = json.loads(journal.read_text())
    if isinstance(content, list):  # files only
        return _roll_forward(journal, content)
    return _resolve(journal, content) or []

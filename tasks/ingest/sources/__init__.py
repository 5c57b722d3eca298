"""Data sources: where the raw long-format rows come from. One module per source in this
package, each defining `SOURCE`, an instance of a `DataSource` subclass; `data.source` in
params.yaml chooses one by name, or `auto` (the default) picks the first whose `can_read` accepts
`data.path` (a directory, then a file by its suffix).

A source only reads: it yields raw frames, each with where it came from (a file name, a table),
holding at least the required columns (tasks/columns.py, under the source's own names, which
data.columns maps), typed or as text. Typing text,
row bookkeeping and every check are ingest's job (tasks/ingest/), the same for every source.

Adding a source: a new module here with `SOURCE = MySource()`, then `data.source: mysource`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import polars as pl

from tasks import plugins
from tasks.errors import DataSourceError, SourceUnavailable

HINT = "set data.path in params.yaml to a .csv or .parquet file or a directory of them"


class DataSource(ABC):
    name: ClassVar[str]
    # File suffixes this source reads (lower case, with the dot); empty for non-file sources.
    suffixes: ClassVar[tuple[str, ...]] = ()

    def can_read(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in self.suffixes

    @abstractmethod
    def read(self, path: Path) -> Iterator[tuple[str, pl.DataFrame]]:
        """(origin, raw frame) parts; raise DataSourceError when the source cannot be read."""

    def read_columns(
        self, path: Path, names: Mapping[str, str]
    ) -> Iterator[tuple[str, pl.DataFrame]]:
        """`read`, told the source's names of the long format's columns (data.columns: long
        format name -> source name) for a source that types columns by name as it reads (CSV).
        The parts keep the source's names: ingest renames them. Default: `read`."""
        return self.read(path)


def names() -> tuple[str, ...]:
    return plugins.names(__name__)


def load(name: str) -> DataSource:
    return plugins.load(__name__, name, "SOURCE")


def file_suffixes() -> tuple[str, ...]:
    return tuple(s for n in names() for s in load(n).suffixes)


def for_suffix(path: Path) -> DataSource | None:
    return next((s for s in map(load, names()) if path.suffix.lower() in s.suffixes), None)


def choose(path: Path, name: str = "auto") -> DataSource:
    """The source `name`, or for "auto" the first registered one that can read `path`."""
    if not path.exists():
        raise SourceUnavailable(f"data source {path} does not exist ({HINT})")
    if name != "auto":
        return load(name)
    if path.is_dir():
        return load("directory")
    source = for_suffix(path)
    if source is None:
        raise DataSourceError(
            f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
            f"supported: {', '.join(file_suffixes())} ({HINT})"
        )
    return source


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def unreadable(path: Path, err: Exception) -> DataSourceError:
    # The OS failing to read (permissions, I/O, a vanished mount) may pass; a malformed file won't.
    kind = SourceUnavailable if isinstance(err, OSError) else DataSourceError
    return kind(
        f"{path}: cannot read this file ({type(err).__name__}: {first_line(err)}); "
        "check that it is a valid, non-empty CSV (with a header row) or Parquet file"
    )

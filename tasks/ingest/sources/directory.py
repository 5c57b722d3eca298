"""A directory of files (e.g. one export per day or per store), each read by the file source
for its suffix, in name order; files of other types are ignored."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl

from tasks.errors import DataSourceError
from tasks.ingest import sources


class DirectorySource(sources.DataSource):
    name = "directory"

    def can_read(self, path: Path) -> bool:
        return path.is_dir()

    def read(self, path: Path) -> Iterator[tuple[str, pl.DataFrame]]:
        return self.read_columns(path, {})

    def read_columns(
        self, path: Path, names: Mapping[str, str]
    ) -> Iterator[tuple[str, pl.DataFrame]]:
        if not path.is_dir():
            raise DataSourceError(f"data.source directory: {path} is not a directory")
        suffixes = sources.file_suffixes()
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            found = sorted(p.name for p in path.iterdir())[:10]
            raise DataSourceError(
                f"directory {path} holds no {' or '.join(suffixes)} files "
                f"(found: {', '.join(found) or 'nothing'}); {sources.HINT}"
            )
        for file in files:
            reader = sources.for_suffix(file)
            yield from reader.read_columns(file, names) if names else reader.read(file)


SOURCE = DirectorySource()

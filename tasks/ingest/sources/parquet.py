"""Parquet files (typed columns; read without copies)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tasks.ingest.sources import DataSource, unreadable


class ParquetSource(DataSource):
    name = "parquet"
    suffixes = (".parquet",)

    def read(self, path: Path) -> Iterator[tuple[str, pl.DataFrame]]:
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise unreadable(path, err) from None
        yield str(path), frame


SOURCE = ParquetSource()

"""CSV files with a header row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.sources import DataSource, unreadable


class CsvSource(DataSource):
    name = "csv"
    suffixes = (".csv",)

    def read(self, path: Path) -> Iterator[tuple[str, pl.DataFrame]]:
        # Required columns as text: a stray "abc" in `value` or a bad date must become a
        # reported row, not a reader crash (polars infers types from the first rows only).
        overrides = {SERIES_ID: pl.String, TIMESTAMP: pl.String, VALUE: pl.String}
        try:
            frame = pl.read_csv(path, schema_overrides=overrides, infer_schema_length=10_000)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise unreadable(path, err) from None
        yield str(path), frame


SOURCE = CsvSource()

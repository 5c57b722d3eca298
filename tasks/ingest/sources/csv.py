"""CSV files with a header row."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.ingest.sources import DataSource, unreadable


class CsvSource(DataSource):
    name = "csv"
    suffixes = (".csv",)

    def read(self, path: Path) -> Iterator[tuple[str, pl.DataFrame]]:
        return self.read_columns(path, {c: c for c in (SERIES_ID, TIMESTAMP, VALUE)})

    def read_columns(
        self, path: Path, names: Mapping[str, str]
    ) -> Iterator[tuple[str, pl.DataFrame]]:
        # series_id and timestamp as text: a bad date must become a reported row, not a reader
        # crash (polars infers types from the first rows only), and ingest parses timestamps
        # by its own rules. `value` is read as a number first (the reader parses it in
        # parallel, and 10M values as text held 160 MiB more); a cell that is not a number
        # makes the reader fail, and the file is read again with `value` as text for ingest
        # to report that cell. The reader takes exactly the numbers ingest's own parsing takes,
        # to the same values (leading blanks, NaN, inf included): either way, the same frame.
        # (By the source's names: data.columns.)
        text = {names[c]: pl.String for c in (SERIES_ID, TIMESTAMP) if c in names}
        value = names.get(VALUE, VALUE)
        try:
            try:
                frame = _read(path, {**text, value: pl.Float64})
            except pl.exceptions.ComputeError:
                frame = _read(path, {**text, value: pl.String})
        except (pl.exceptions.PolarsError, OSError) as err:
            raise unreadable(path, err) from None
        yield str(path), frame


def _read(path: Path, overrides: dict) -> pl.DataFrame:
    return pl.read_csv(path, schema_overrides=overrides, infer_schema_length=10_000)


SOURCE = CsvSource()

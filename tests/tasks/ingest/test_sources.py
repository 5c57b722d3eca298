"""Data sources (tasks/ingest/sources/): chosen by data.source or by the path, one module each."""

from __future__ import annotations

import sys
import textwrap
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from tasks.config import parse_config
from tasks.errors import ConfigError, DataSourceError
from tasks.ingest import read_source, sources
from tests.conftest import base_env, run

FRAME = pl.DataFrame(
    {
        "series_id": ["a", "a", "b"],
        "timestamp": [datetime(2020, 1, 1), datetime(2020, 2, 1), datetime(2020, 1, 1)],
        "value": [1.0, 2.0, 3.0],
    }
)


def test_registered_sources_are_the_modules():
    assert sources.names() == ("csv", "directory", "parquet")
    assert sources.file_suffixes() == (".csv", ".parquet")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_auto_picks_by_suffix_and_reads_the_same_rows(tmp_path: Path, suffix: str):
    path = tmp_path / f"series{suffix}"
    FRAME.write_csv(path) if suffix == ".csv" else FRAME.write_parquet(path)
    assert sources.choose(path).name == suffix[1:]
    frame = read_source(path)
    assert frame.select("series_id", "timestamp", "value").equals(FRAME)
    assert set(frame["_source"]) == {str(path)}


def test_a_directory_reads_each_file_with_its_source(tmp_path: Path):
    FRAME.head(2).write_csv(tmp_path / "1.csv")
    FRAME.tail(1).write_parquet(tmp_path / "2.parquet")
    (tmp_path / "notes.txt").write_text("ignored")
    assert sources.choose(tmp_path).name == "directory"
    frame = read_source(tmp_path)
    assert frame.select("series_id", "timestamp", "value").equals(FRAME)
    assert frame["_source"].to_list() == [str(tmp_path / "1.csv")] * 2 + [
        str(tmp_path / "2.parquet")
    ]
    assert frame["_row"].to_list() == [1, 2, 1]  # row numbers per file


def test_an_explicit_source_overrides_the_suffix(tmp_path: Path):
    path = tmp_path / "export.dat"  # a CSV under another name
    FRAME.write_csv(path)
    with pytest.raises(DataSourceError, match="unsupported file type '.dat'; supported: .csv"):
        read_source(path)
    assert read_source(path, "csv").height == 3
    with pytest.raises(DataSourceError, match="cannot read this file"):
        read_source(path, "parquet")


def test_missing_path_and_empty_directory_say_what_to_do(tmp_path: Path):
    with pytest.raises(DataSourceError, match="does not exist .*set data.path"):
        read_source(tmp_path / "nothing.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSourceError, match="holds no .csv or .parquet files"):
        read_source(tmp_path / "empty")


def test_config_refuses_an_unknown_source():
    assert parse_config({"data": {"source": "csv"}}).data.source == "csv"
    with pytest.raises(ConfigError, match="data.source: unknown source 'excel'; auto or one of"):
        parse_config({"data": {"source": "excel"}})


JSON_SOURCE = '''
"""JSON lines (a source added by a test)."""

import polars as pl

from tasks.ingest.sources import DataSource


class JsonLines(DataSource):
    name = "jsonl"
    suffixes = (".jsonl",)

    def read(self, path):
        yield str(path), pl.read_ndjson(path)


SOURCE = JsonLines()
'''


def test_a_new_source_is_one_module(project: Path):
    (project / "tasks/ingest/sources/jsonl.py").write_text(textwrap.dedent(JSON_SOURCE))
    data = project / "data/raw/series.jsonl"
    FRAME.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%d")).write_ndjson(data)
    probe = (
        "from tasks.ingest import read_source; from tasks.config import parse_config; "
        "parse_config({'data': {'source': 'jsonl'}}); "
        f"f = read_source({str(data)!r}); print(f.height, f['timestamp'].dtype)"
    )
    out = run([sys.executable, "-c", probe], project, env=base_env()).stdout.split()
    assert out == ["3", "Datetime(time_unit='us',", "time_zone=None)"]


class _State:
    def __init__(self, err: Exception):
        self.err = err

    def result(self):
        raise self.err


@pytest.mark.parametrize(
    ("content", "transient"),
    [
        (None, True),  # not there (yet): retried
        (b"", False),  # 0-byte CSV
        (b"series_id;timestamp;value\na;2020-01-01;1\n", False),  # wrong delimiter
    ],
)
def test_only_an_unavailable_source_is_retried(tmp_path: Path, content, transient):
    from flows.stages.ingest import transient_source_error

    path = tmp_path / "raw.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataSourceError) as caught:
        read_source(path)
    assert transient_source_error(None, None, _State(caught.value)) is transient


def test_a_zero_byte_parquet_is_not_retried(tmp_path: Path):
    from flows.stages.ingest import transient_source_error

    path = tmp_path / "raw.parquet"
    path.write_bytes(b"")
    with pytest.raises(DataSourceError, match="cannot read this file") as caught:
        read_source(path)
    assert transient_source_error(None, None, _State(caught.value)) is False


@pytest.mark.parametrize(
    ("cells", "values"),
    [
        ([" 12", "NaN", "1e5", "-inf"], [12.0, float("nan"), 1e5, float("-inf")]),  # as numbers
        (["12 ", "NaN", "1e5", "x"], [12.0, float("nan"), 1e5, None]),  # again as text
    ],
    ids=["read as numbers", "read again as text"],
)
def test_csv_values_parse_the_same_whichever_way_they_are_read(tmp_path: Path, cells, values):
    path = tmp_path / "s.csv"
    rows = [f"a,2020-0{i + 1}-01,{c}" for i, c in enumerate(cells)]
    path.write_text("\n".join(["series_id,timestamp,value", *rows]) + "\n")
    frame = read_source(path)
    assert [str(v) for v in frame["value"]] == [str(v) for v in values]  # nan == nan as text
    raw = frame["_raw_value"].to_list()
    assert raw == [None, None, None, "x" if values[3] is None else None]

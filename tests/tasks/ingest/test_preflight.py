"""The header check before a run (tasks/ingest/preflight.py): the names data.columns and
data.covariates expect, from a CSV's first line, a Parquet file's schema or each file of a
directory; nothing else read, a missing source left to ingest."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tasks.config import parse_config
from tasks.errors import DataSourceError, SourceMismatch
from tasks.ingest.preflight import check_header

STORE = {"series_id": "store", "timestamp": "date", "value": "sales"}


def cfg(path: Path, **data):
    return parse_config({"data": {"path": str(path), "allow_outside_repo": True, **data}})


def test_a_fitting_csv_parquet_and_directory_pass(tmp_path):
    frame = pl.DataFrame({"date": ["2021-06-30"], "store": ["a"], "sales": [1.0]})
    frame.write_csv(tmp_path / "s.csv")
    (tmp_path / "parts").mkdir()
    frame.write_parquet(tmp_path / "parts" / "a.parquet")
    frame.write_csv(tmp_path / "parts" / "b.csv")
    for path in (tmp_path / "s.csv", tmp_path / "parts"):
        check_header(cfg(path, columns=STORE))


def test_a_parquet_file_with_the_wrong_names_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "s.parquet"
    pl.DataFrame({"day": ["2021-06-30"], "sales": [1.0]}).write_parquet(path)
    with pytest.raises(SourceMismatch) as info:
        check_header(cfg(path, columns=STORE))
    err = info.value
    assert err.where == str(path) and "store (data.columns.series_id)" in err.what
    assert "date (data.columns.timestamp)" in err.what and "found columns: day, sales" in err.what
    assert err.fix.startswith("set data.columns in params.yaml")
    assert "what:" in err.block() and "fix:" in err.block()


def test_one_file_of_a_directory_with_the_wrong_names_is_named(tmp_path):
    (tmp_path / "parts").mkdir()
    pl.DataFrame({"date": ["2021-06-30"], "store": ["a"], "sales": [1.0]}).write_csv(
        tmp_path / "parts" / "a.csv"
    )
    (tmp_path / "parts" / "b.csv").write_text("date,shop,sales\n")
    with pytest.raises(SourceMismatch, match="b.csv"):
        check_header(cfg(tmp_path / "parts", columns=STORE))


def test_undeclared_and_missing_covariates_are_named_before_the_run(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("date,store,sales,promo\n")
    with pytest.raises(DataSourceError, match="promo are not declared covariates"):
        check_header(cfg(path, columns=STORE))
    check_header(cfg(path, columns=STORE, covariates={"past": ["promo"]}))
    with pytest.raises(DataSourceError, match="declares price, missing"):
        check_header(cfg(path, columns=STORE, covariates={"past": ["promo", "price"]}))


def test_a_missing_source_is_left_to_ingest(tmp_path):
    check_header(cfg(tmp_path / "late.csv"))  # ingest retries it (an export not landed yet)

"""flows/published.py: the one-line description of the published run."""

from __future__ import annotations

import polars as pl

from flows.published import describe_run

RUN = {
    "run_key": "k" * 20,
    "model_version": "m" * 20,
    "git_commit": "g" * 20,
    "data_md5": "d" * 20,
    "flow_run_id": "f-1",
    "published_at": "2026-11-30T12:00:00",
    "series_id": "a",
}


def test_the_description_names_the_run_and_when_its_model_trained_through():
    current = pl.DataFrame([{**RUN, "trained_through": "1960-12-01"}, {**RUN, "series_id": "b"}])
    line = describe_run(current)
    assert "model trained through 1960-12-01" in line
    assert line.startswith("published run kkkkkkkkkkkk: model mmmmmmmmmmmm")
    assert line.endswith("2 rows, 2 series")


def test_an_export_from_before_trained_through_is_described_not_refused():
    # Exports written before lineage carried trained_through (schema 4) lack the column.
    assert "model trained through unknown" in describe_run(pl.DataFrame([RUN]))
    assert describe_run(pl.DataFrame()) == "the store holds no published forecasts"

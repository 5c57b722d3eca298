"""flows/monitoring.py: realized accuracy per published run against its backtest figure."""

from __future__ import annotations

import polars as pl
import pytest

from flows.monitoring import realized_runs


def _scores(rows: list[tuple[str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run_key": [k for k, _ in rows],
            "n_series": [1] * len(rows),
            "n_observed": [12] * len(rows),
            "mase": [v for _, v in rows],
            "scored_at": ["2026-11-30T00:00:00"] * len(rows),
        }
    )


def test_a_run_is_degraded_above_the_backtest_times_one_plus_the_allowance():
    scores = _scores([("old", 0.9), ("new", 1.6), ("unjudged", 5.0)])
    series = scores.with_columns(pl.lit("s1").alias("series_id"))
    published = pl.DataFrame(
        {
            "run_key": ["new", "old", "unjudged"],
            "publish_seq": [2, 1, 3],
            "published_at": ["t2", "t1", "t3"],
        }
    )
    expected = {"old": {"mase": 0.8}, "new": {"mase": 1.0}}
    runs = realized_runs(scores, series, published, expected, "mase", 0.5)
    assert runs["run_key"].to_list() == ["old", "new", "unjudged"]  # oldest publish first
    assert runs["expected_mase"].to_list() == [0.8, 1.0, None]
    assert runs["limit"][:2].to_list() == pytest.approx([1.2, 1.5])
    # 0.9 <= 1.2: fine; 1.6 > 1.5: degraded; no backtest figure: not judged (null).
    assert runs["degraded"].to_list() == [False, True, None]

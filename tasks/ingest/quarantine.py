"""Per-series quarantine: which failures belong to one series (that series is set aside and the
others go on, data.on_bad_series: skip) and which to the whole source (the run stops), and the
bounded listing of the quarantined series for metrics/ingest.json and the Prefect UI.

A failure record belongs to the source when it names no series (a null series_id, a column of
the wrong type) or its check is one of SOURCE_CHECKS: a duplicate (series_id, timestamp) key
means the export itself is wrong (two rows claim the same point), not that one series is odd.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config
from tasks.textfmt import clip

SOURCE_CHECKS = frozenset({"dtype", "covariate_numeric", "unique_key", "non_empty"})

# Bounds of the listing (metrics/ingest.json is a git-tracked metric and the artifact a table in
# the UI): at most this many series, each with at most this many sample failure rows.
MAX_SERIES_LISTED = 100
MAX_SAMPLE_ROWS = 5


def is_source_level() -> pl.Expr:
    return pl.col("check").is_in(list(SOURCE_CHECKS)) | pl.col(SERIES_ID).is_null()


def bad_series(failures: pl.DataFrame) -> pl.Series:
    """The series named by series-level failures, in order of first failure."""
    series = failures.filter(~is_source_level())[SERIES_ID]
    return series.unique(maintain_order=True)


@dataclass(frozen=True)
class Verdict:
    """What the failures mean for the run: `fail` (with `why` for the report) or go on without
    `quarantined` (series-level failure records of the series set aside)."""

    fail: bool
    why: str
    quarantined: pl.DataFrame


def judge(failures: pl.DataFrame, n_series: int, cfg: Config) -> Verdict:
    """Apply data.on_bad_series and data.max_bad_series_fraction to every failure of a source
    holding `n_series` series (with a usable id and timestamp)."""
    if not failures.height:
        return Verdict(False, "", failures)
    source = failures.filter(is_source_level())
    series = failures.filter(~is_source_level())
    n_bad = series[SERIES_ID].n_unique()
    d = cfg.data
    if source.height:
        why = f"{source['check'].n_unique()} check(s) failed for the source as a whole"
    elif d.on_bad_series == "fail":
        why = "data.on_bad_series = fail: any failing series stops ingest"
    elif n_bad >= n_series:
        why = f"every series ({n_series}) failed its checks: no series left to forecast"
    elif n_bad > d.max_bad_series_fraction * n_series:
        why = (
            f"{n_bad} of {n_series} series ({n_bad / n_series:.1%}) failed their checks, more "
            f"than data.max_bad_series_fraction = {d.max_bad_series_fraction} (that many usually "
            "means a wrong param or a broken export; raise it to quarantine them instead)"
        )
    else:
        return Verdict(False, "", series)
    return Verdict(True, why, series)


def listing(
    quarantined: pl.DataFrame, rows_per_series: pl.DataFrame, n_series: int, cfg: Config
) -> dict:
    """JSON-able, bounded description of the quarantined series: per series its reasons (check,
    failing count, what failed) and its first failure rows, values clipped."""
    from tasks.ingest.report import describe

    n_bad = quarantined[SERIES_ID].n_unique()
    listed = []
    ids = quarantined[SERIES_ID].unique(maintain_order=True).head(MAX_SERIES_LISTED)
    rows = dict(rows_per_series.iter_rows())
    for (sid,), part in quarantined.filter(pl.col(SERIES_ID).is_in(ids.implode())).group_by(
        SERIES_ID, maintain_order=True
    ):
        reasons = [
            {"check": check, "failing": n, "what": describe(check, cfg)}
            for check, n in part.group_by("check", maintain_order=True).len().iter_rows()
        ]
        sample = [
            {
                "source": None if r["source"] is None else clip(r["source"]),
                "row": r["row"],
                TIMESTAMP: None if r[TIMESTAMP] is None else r[TIMESTAMP].isoformat(),
                VALUE: r[VALUE]
                if r[VALUE] is None or abs(r[VALUE]) < float("inf")
                else str(r[VALUE]),
                "check": r["check"],
                "detail": None if r["detail"] is None else clip(r["detail"], 200),
            }
            for r in part.head(MAX_SAMPLE_ROWS).iter_rows(named=True)
        ]
        listed.append(
            {
                SERIES_ID: clip(sid),
                "rows": int(rows.get(sid, 0)),
                "reasons": reasons,
                "sample": sample,
                "failures": part.height,
            }
        )
    return {
        "series": n_bad,
        "of_series": n_series,
        "fraction": n_bad / n_series if n_series else 0.0,
        "listed": listed,
        "truncated": n_bad > len(listed),
    }


def table(quarantined: pl.DataFrame, rows_per_series: pl.DataFrame) -> pl.DataFrame:
    """Every quarantined series (unbounded, unlike `listing`): series_id, the checks it failed
    (comma-separated), its failure count and source rows. What publish reads to keep their last
    forecasts, marked stale."""
    per_series = quarantined.group_by(SERIES_ID, maintain_order=True).agg(
        checks=pl.col("check").unique(maintain_order=True).str.join(", "),
        failures=pl.len().cast(pl.Int64),
    )
    rows = rows_per_series.select(SERIES_ID, rows=pl.col("len").cast(pl.Int64))
    return per_series.join(rows, on=SERIES_ID, how="left", maintain_order="left").with_columns(
        pl.col("rows").fill_null(0)
    )

"""Ingest: read the raw long-format source and validate it before any stage trusts it.

`read_source` turns a CSV/Parquet file (or a directory of them) into a typed frame and remembers,
per row, the file and row it came from and the raw text of any timestamp or value that did not
parse. `ingest` checks it: the pandera schema (tasks.ingest.schema) plus the per-series checks
pandera can't express (order, time grid, gaps, history length, a constant training part), collects
every failure at once, quarantines the series with series-level failures (data.on_bad_series) and
raises one DataValidationError with a readable report when the run cannot go on. `validate` is
its frame; `summarize` describes it.

One job per module: `read` (the source), `screen` (one vectorised pass that vouches for the clean
series, so the rest run only where needed), `checks` (every detailed check, as failure records),
`quarantine` (series-level or source-level, the listing), `report` (the failure report), `fill`
(gap filling); this one runs them, the detailed checks chunk by chunk. Bookkeeping columns start
with "_" and never leave `ingest`. Its output carries one extra boolean column, `filled`
(tasks.ingest.schema.FILLED): True for rows created by gap filling, so that `summarize` (and any
later stage) can tell imputed values from observed ones.

Owns the data sources (`sources/`, one module per source) and the pandera schema (`schema`).
May import: the shared modules beside this package. Never: features, model, evaluation,
publishing, monitoring (they read what ingest wrote, through the stage files).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from tasks.columns import KEY, REQUIRED, SERIES_ID, TIMESTAMP
from tasks.config import Config
from tasks.errors import DataValidationError
from tasks.ingest import limits, quarantine, screen
from tasks.ingest.checks import (
    SID,
    covariates,
    empty_failures,
    key_rows,
    parse_failures,
    schema_failures,
    series_failures,
    series_grid,
)
from tasks.ingest.covariate_checks import check_columns, check_static, empty_future, read_future
from tasks.ingest.covariate_checks import validate_future as _validate_future
from tasks.ingest.fill import fill_gaps
from tasks.ingest.read import BOOKKEEPING, coerce, read_source, require_columns, with_bookkeeping
from tasks.ingest.report import format_report
from tasks.ingest.schema import FILLED
from tasks.series_ids import show
from tasks.timefmt import iso

log = logging.getLogger("forecast")

__all__ = [
    "CHUNK_ROWS",
    "Ingested",
    "future_rows",
    "ingest",
    "read_source",
    "series_chunks",
    "summarize",
    "validate",
]

# Rows checked at once (whole series): the joins and pandera's checks need ~400 bytes per row
# they look at, so 10M rows are checked in 50 slices instead of in one go (measured at 10M rows:
# peak 2.2 GiB above the data in one go, 0.1 GiB in slices of 200k, at 4x the speed).
CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class Ingested:
    """The validated frame and what was set aside on the way (data.on_bad_series: skip)."""

    frame: pl.DataFrame  # the good series, sorted by key, gap-filled, with FILLED
    quarantined: pl.DataFrame  # failure records (FAILURE_SCHEMA) of the quarantined series
    quarantined_rows: pl.DataFrame  # series_id, len: source rows of each quarantined series
    series: int  # series in the source (with a usable id and timestamp)

    def listing(self, cfg: Config) -> dict:
        return quarantine.listing(self.quarantined, self.quarantined_rows, self.series, cfg)

    def quarantine_table(self) -> pl.DataFrame:
        return quarantine.table(self.quarantined, self.quarantined_rows)


def validate(df: pl.DataFrame, cfg: Config, chunk_rows: int = CHUNK_ROWS) -> pl.DataFrame:
    """`ingest(df, cfg).frame`: the validated frame, without the quarantined series."""
    return ingest(df, cfg, chunk_rows).frame


def ingest(
    df: pl.DataFrame, cfg: Config, chunk_rows: int = CHUNK_ROWS, screened: bool = True
) -> Ingested:
    """Check `df` against the long format and `cfg`; return it sorted, typed and gap-filled,
    less the series quarantined for series-level failures (data.on_bad_series).

    The screen (tasks.ingest.screen) vouches for the clean series in one vectorised pass; the
    detailed checks run on the rest (`screened=False`: on every row), so they cost time only
    where something is wrong or needs filling. Every check runs before anything is raised, so
    one DataValidationError lists all problems; it is raised for a problem of the whole source,
    with data.on_bad_series = fail, or when too many series failed (quarantine.judge).
    """
    require_columns(df, "validate")
    check_columns(df.collect_schema(), cfg)  # undeclared, missing or wrong-kind covariates
    frame = coerce(with_bookkeeping(df, source="<frame>"), cfg.data.timezone)
    limits.check(frame, cfg)  # ids the targets cannot hold, a horizon past the calendar
    split = screen.screen(frame, cfg) if screened else None
    suspect = frame if split is None else split.suspect
    checked = _check(suspect, cfg, chunk_rows) if split is None or suspect.height else None
    failed = checked.failures if checked else empty_failures()
    n_series = (checked.series if checked else 0) + (split.clean_series if split else 0)
    verdict = quarantine.judge(failed, n_series, cfg)
    if verdict.fail:
        raise DataValidationError(format_report(failed, frame, cfg, verdict.why), failed)
    if verdict.quarantined.height:
        log.warning(
            "ingest: %d of %d series quarantined (failed their checks; listed in "
            "metrics/ingest.json): %s",
            verdict.quarantined[SERIES_ID].n_unique(),
            n_series,
            ", ".join(show(s) for s in quarantine.bad_series(verdict.quarantined).head(10)),
        )
    if split is None:
        out = checked.frame
    else:
        out = _with_checked(_clean_rows(split), checked.frame if checked else pl.DataFrame())
    rows = checked.rows if checked else _Checked.no_rows()
    check_static(out, cfg)
    return Ingested(out, verdict.quarantined, rows, n_series)


def future_rows(path, frame: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """The future covariates (data.future_path at `path`) for the horizon after each series of
    the validated `frame`; an empty frame when none are declared (tasks/ingest/covariates.py)."""
    if not cfg.data.covariates.future:
        return empty_future(cfg)
    return _validate_future(read_future(path, cfg), frame, cfg)


def _clean_rows(split: screen.Screened) -> pl.DataFrame:
    clean = split.clean.select(*REQUIRED, *covariates(split.clean), pl.lit(False).alias(FILLED))
    return clean if split.clean_sorted else clean.sort(KEY)


def _with_checked(clean: pl.DataFrame, checked: pl.DataFrame) -> pl.DataFrame:
    """The vouched rows and those that passed the detailed checks (each sorted by key, their
    series disjoint) in key order: merged, not sorted again (10M rows: a sort costs seconds)."""
    if not checked.height:
        return clean
    if clean.height and clean.schema == checked.schema:
        return clean.merge_sorted(checked, key=SERIES_ID)
    return _in_key_order([clean, checked])


@dataclass(frozen=True)
class _Checked:
    frame: pl.DataFrame  # the series that passed, sorted by key, gap-filled
    failures: pl.DataFrame
    rows: pl.DataFrame  # series_id, len of each series with a series-level failure
    series: int

    @staticmethod
    def no_rows() -> pl.DataFrame:
        return pl.DataFrame(schema={SERIES_ID: pl.String, "len": pl.UInt32})


def _check(frame: pl.DataFrame, cfg: Config, chunk_rows: int) -> _Checked:
    """Every detailed check on `frame`, chunk by chunk (whole series per chunk, so the working
    memory stays bounded); the passing series gap-filled. When nothing needs filling or sorting
    the result shares its buffers with `frame`."""
    failures, outputs, counts, n_series = [empty_failures()], [], [], 0
    skip = cfg.data.on_bad_series == "skip"
    source_failed = False
    for part in series_chunks(frame, chunk_rows):
        keyed = key_rows(part)
        grid = series_grid(keyed, cfg.data.frequency)
        n_series += keyed[SID].n_unique()
        found = pl.concat(
            [
                *parse_failures(part),
                *schema_failures(part, cfg),
                *series_failures(part, keyed, grid, cfg),
            ],
            how="vertical",
        )
        failures.append(found)
        source_failed = source_failed or found.filter(quarantine.is_source_level()).height > 0
        if source_failed or (found.height and not skip):
            continue  # the run fails: no output needed
        rows = part if part.height == keyed.height == grid.height else keyed
        bad = quarantine.bad_series(found)
        if bad.len():
            in_bad = pl.col(SERIES_ID).is_in(bad.implode())
            counts.append(part.filter(in_bad).group_by(SERIES_ID, maintain_order=True).len())
            rows = keyed.filter(~in_bad)
            grid = grid.join(rows.select(pl.col(SID).unique()), on=SID, how="semi")
        outputs.append(fill_gaps(rows.drop(BOOKKEEPING), grid.drop("lo"), cfg.data.fill_gaps))
        del keyed, grid
    return _Checked(
        frame=_in_key_order(outputs) if outputs else pl.DataFrame(),
        failures=pl.concat(failures, how="vertical"),
        rows=pl.concat([_Checked.no_rows(), *counts]),
        series=n_series,
    )


def series_chunks(frame: pl.DataFrame, chunk_rows: int = CHUNK_ROWS) -> list[pl.DataFrame]:
    """Zero-copy slices of `frame` holding whole series, about `chunk_rows` rows each.

    A series is validated as a whole (order, grid, gaps, duplicate keys are per-series checks),
    so a cut may only fall between series. When some series is split over several runs of rows
    (series interleaved in the source) no such cut exists and the frame is one chunk.
    """
    if frame.height <= chunk_rows:
        return [frame]
    runs = frame[SERIES_ID].rle().struct.unnest()  # one row per run of equal series_id
    if runs["value"].n_unique() != runs.height:
        return [frame]
    lengths = runs["len"].to_numpy().astype(np.int64)
    starts = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)[:-1]])
    block = starts // chunk_rows
    cuts = [*starts[np.flatnonzero(np.diff(block)) + 1].tolist(), frame.height]
    chunks, lo = [], 0
    for hi in cuts:
        chunks.append(frame.slice(lo, hi - lo))
        lo = hi
    return chunks


def _in_key_order(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate validated parts (each sorted by key, series disjoint between parts); sort
    again only when the parts themselves are out of series order. "relaxed": a covariate may be
    integer in one part and float where interpolation filled it in another."""
    parts = [p for p in parts if p.height] or [p for p in parts if p.width][:1]
    out = pl.concat(parts, how="vertical_relaxed", rechunk=False)
    firsts = [p[SERIES_ID][0] for p in parts[1:]]
    lasts = [p[SERIES_ID][-1] for p in parts[:-1]]
    if any(last > first for last, first in zip(lasts, firsts, strict=True)):
        out = out.sort(KEY)
    return out


def summarize(df: pl.DataFrame) -> dict:
    """JSON-able description of a validated frame (written to metrics/ingest.json)."""
    lengths = df.group_by(SERIES_ID).len()["len"]
    return {
        "rows": df.height,
        "series": lengths.len(),
        "first_timestamp": iso(df[TIMESTAMP].min()),
        "last_timestamp": iso(df[TIMESTAMP].max()),
        "min_series_length": int(lengths.min()) if lengths.len() else 0,
        "max_series_length": int(lengths.max()) if lengths.len() else 0,
        "filled_gaps": int(df[FILLED].sum()) if FILLED in df.columns else 0,
        "covariates": covariates(df),
    }

"""Covariate checks of ingest: the declared columns (data.covariates) against the source, statics
constant per series, and the future file (data.future_path) against the validated series.

Every problem is named with its column (and series, for per-series ones) so the fix is obvious;
nothing is written before they all pass (the ingest stage writes only after `ingest` returned).
Row-level problems of a covariate (null, NaN, inf) are the schema's `covariate_finite` check, so
they quarantine a series like a bad value does.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks import timegrid
from tasks.columns import KEY, SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config
from tasks.errors import DataSourceError, DataValidationError
from tasks.ingest import sources
from tasks.ingest.read import RAW_TIMESTAMP, coerce, map_columns
from tasks.ingest.schema import TIMESTAMP_DTYPE, covariate_columns
from tasks.textfmt import clip
from tasks.timefmt import iso

SHOWN = 5  # series listed per problem


def _listed(names) -> str:
    names = list(names)
    more = f" (and {len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return ", ".join(clip(str(n)) for n in names[:SHOWN]) + more


def check_columns(schema: pl.Schema, cfg: Config, where: str = "data.path") -> None:
    """The source's extra columns are exactly the declared covariates, each of a usable kind:
    past and future numeric, static numeric or text. Raises DataSourceError naming them."""
    cov = cfg.data.covariates
    present = [c for c in covariate_columns(schema.names()) if not c.startswith("_")]
    problems = []
    undeclared = [c for c in present if c not in cov.declared]
    if undeclared:
        problems.append(
            f"column(s) {_listed(undeclared)} are not declared covariates: list each under "
            "data.covariates.past, .future or .static in params.yaml, or drop it from the source "
            "(an undeclared column would be silently ignored)"
        )
    for kind in ("past", "future", "static"):
        missing = [c for c in getattr(cov, kind) if c not in schema]
        if missing:
            problems.append(
                f"data.covariates.{kind} declares {_listed(missing)}, missing from the source "
                f"(its columns: {', '.join(schema.names())})"
            )
    for kind in ("past", "future"):
        text = [c for c in getattr(cov, kind) if c in schema and not _numeric(schema[c])]
        if text:
            problems.append(
                f"data.covariates.{kind} column(s) {_listed(text)} are not numeric "
                f"({', '.join(str(schema[c]) for c in text)}): a {kind} covariate must be a "
                "number per step (encode a category as 0/1 columns), or declare it static"
            )
    static = [c for c in cov.static if c in schema]
    odd = [c for c in static if not (_numeric(schema[c]) or _textual(schema[c]))]
    if odd:
        problems.append(
            f"data.covariates.static column(s) {_listed(odd)} are of type "
            f"{', '.join(str(schema[c]) for c in odd)}: a static covariate is a number or text"
        )
    if problems:
        raise DataSourceError(f"{where}: covariates: " + "; ".join(problems))


def _numeric(dtype) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _textual(dtype) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)


def check_static(frame: pl.DataFrame, cfg: Config) -> None:
    """Each static covariate holds one value per series (it describes the series, not a step)."""
    static = list(cfg.data.covariates.static)
    if not static or not frame.height:
        return
    counts = frame.group_by(SERIES_ID).agg(pl.col(c).n_unique() for c in static)
    problems = []
    for c in static:
        varying = counts.filter(pl.col(c) > 1)[SERIES_ID].sort().to_list()
        if varying:
            problems.append(
                f"static covariate {c!r} changes within series {_listed(varying)}: a static "
                "covariate has one value per series (declare it past or future if it varies)"
            )
    if problems:
        raise DataValidationError("; ".join(problems))


# ------------------------------------------------------------------------------ future file
def horizon_grid(frame: pl.DataFrame, horizon: int, frequency: str) -> pl.DataFrame:
    """series_id, timestamp of the `horizon` steps after each series' last observation, keeping
    the series' anchor as the forecasts do (tasks.timegrid, month ends stay month ends)."""
    ts = pl.col(TIMESTAMP)
    last = frame.group_by(SERIES_ID).agg(
        ts.max().alias("_last"), timegrid.month_end_anchor(ts).alias("_end")
    )
    steps = pl.DataFrame({"_h": list(range(1, horizon + 1))}, schema={"_h": pl.Int64})
    return (
        last.join(steps, how="cross")
        .select(
            SERIES_ID,
            timegrid.offset_steps(pl.col("_last"), pl.col("_h"), frequency, pl.col("_end"))
            .cast(TIMESTAMP_DTYPE)
            .alias(TIMESTAMP),
        )
        .sort(KEY)
    )


def empty_future(cfg: Config) -> pl.DataFrame:
    schema = {SERIES_ID: pl.String, TIMESTAMP: TIMESTAMP_DTYPE}
    return pl.DataFrame(schema=schema | dict.fromkeys(cfg.data.covariates.future, pl.Float64))


def read_future(path: str | Path, cfg: Config) -> pl.DataFrame:
    """The future file as typed rows (series_id, timestamp, each future covariate)."""
    path = Path(path)
    parts = [frame for _, frame in sources.choose(path, "auto").read(path)]
    raw = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    where = f"data.future_path ({path})"
    names = {**cfg.data.columns.mapping(), VALUE: None}  # the future file has no values
    if parts:
        raw = map_columns(raw, names, where, single=Path(cfg.data.path).stem)
    need = [SERIES_ID, TIMESTAMP, *cfg.data.covariates.future]
    missing = [c for c in need if c not in raw.columns]
    extra = [c for c in raw.columns if c not in need]
    if missing or extra:
        say = []
        if missing:
            say.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            say.append(
                f"column(s) {_listed(extra)} that are not future covariates (it holds only "
                f"{', '.join(need)}: past covariates and values are not known ahead)"
            )
        raise DataSourceError(f"{where}: " + "; ".join(say))
    typed = coerce(raw.with_columns(pl.lit(0.0).alias(VALUE)), cfg.data.timezone)
    bad_ts = typed.filter(pl.col(TIMESTAMP).is_null())
    if bad_ts.height:
        shown = bad_ts[RAW_TIMESTAMP].head(SHOWN).to_list() if RAW_TIMESTAMP in typed else []
        raise DataSourceError(
            f"{where}: {bad_ts.height} timestamp(s) missing or not parseable (e.g. "
            f"{', '.join(repr(s) for s in shown)})"
        )
    text = [c for c in cfg.data.covariates.future if not _numeric(typed.schema[c])]
    if text:
        raise DataSourceError(
            f"{where}: future covariate column(s) {_listed(text)} are not numeric"
        )
    return typed.select(
        SERIES_ID, TIMESTAMP, *(pl.col(c).cast(pl.Float64) for c in cfg.data.covariates.future)
    )


def validate_future(future: pl.DataFrame, frame: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """The future rows of the validated series: exactly the forecast.horizon steps after each
    one's last timestamp, on data.frequency's grid, every future covariate finite. Rows of
    series that are not in `frame` (quarantined, or unknown) are dropped: nothing forecasts
    them. Raises DataValidationError listing every problem."""
    names = list(cfg.data.covariates.future)
    if future.schema[TIMESTAMP] != TIMESTAMP_DTYPE:  # a frame built in code (dates)
        future = future.with_columns(pl.col(TIMESTAMP).cast(TIMESTAMP_DTYPE))
    want = horizon_grid(frame, cfg.forecast.horizon, cfg.data.frequency)
    ours = future.join(want.select(pl.col(SERIES_ID).unique()), on=SERIES_ID, how="semi")
    problems = []
    dup = ours.group_by(KEY).len().filter(pl.col("len") > 1)
    if dup.height:
        problems.append(
            f"{dup.height} (series_id, timestamp) pair(s) given twice, e.g. series "
            f"{clip(dup[SERIES_ID][0])} at {iso(dup[TIMESTAMP][0])}"
        )
    absent = want.join(ours, on=KEY, how="anti")
    if absent.height:
        first = absent.group_by(SERIES_ID, maintain_order=True).first().sort(SERIES_ID)
        problems.append(
            f"{absent.height} horizon step(s) missing for series {_listed(first[SERIES_ID])} "
            f"(first missing: {iso(first[TIMESTAMP][0])} for {clip(first[SERIES_ID][0])}); it "
            f"must cover the forecast.horizon ({cfg.forecast.horizon}) steps of "
            f"{cfg.data.frequency} after each series' last timestamp"
        )
    beyond = ours.join(want, on=KEY, how="anti")
    if beyond.height:
        problems.append(
            f"{beyond.height} row(s) outside the horizon steps after the series' last timestamp "
            f"or off the {cfg.data.frequency} grid (e.g. series {clip(beyond[SERIES_ID][0])} "
            f"at {iso(beyond[TIMESTAMP][0])})"
        )
    for c in names:
        bad = ours.filter(~pl.col(c).is_finite().fill_null(False))
        if bad.height:
            problems.append(
                f"future covariate {c!r}: {bad.height} value(s) missing or not finite (e.g. "
                f"series {clip(bad[SERIES_ID][0])} at {iso(bad[TIMESTAMP][0])})"
            )
    if problems:
        raise DataValidationError(
            f"data.future_path: {len(problems)} problem(s):\n  " + "\n  ".join(problems)
        )
    return want.join(ours, on=KEY, how="left").select(SERIES_ID, TIMESTAMP, *names).sort(KEY)

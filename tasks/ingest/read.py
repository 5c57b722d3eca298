"""Reading the raw long-format source (through a data source, tasks/ingest/sources/) into a typed
frame that remembers, per row, the file and row it came from and the raw text of any timestamp
or value that did not parse (the bookkeeping columns below, which never leave validation)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from tasks.columns import REQUIRED, SERIES_ID, TIMESTAMP, VALUE
from tasks.errors import DataSourceError, SourceMismatch
from tasks.ingest import sources
from tasks.ingest.schema import TIMESTAMP_DTYPE
from tasks.textfmt import clip

ROW = "_row"  # 1-based data row in its file (header not counted) or position in a given frame
SOURCE = "_source"  # the file the row came from
RAW_TIMESTAMP = "_raw_timestamp"  # text of a timestamp that did not parse, else null
RAW_VALUE = "_raw_value"  # text of a value that is not a number, else null
BOOKKEEPING = (ROW, SOURCE, RAW_TIMESTAMP, RAW_VALUE)

# ISO 8601 dates and datetimes ("T" or space, optional seconds/fraction, optional UTC offset).
_NAIVE_FORMATS = ["%Y-%m-%d"] + [
    f"%Y-%m-%d{sep}{time}" for sep in ("T", " ") for time in ("%H:%M:%S%.f", "%H:%M")
]
_OFFSET_FORMATS = [f"%Y-%m-%d{sep}%H:%M:%S%.f%#z" for sep in ("T", " ")]


def read_source(
    path: str | Path,
    source: str = "auto",
    timezone: str = "UTC",
    columns: Mapping[str, str | None] | None = None,
) -> pl.DataFrame:
    """Read `path` with the data source `source` (tasks/ingest/sources/; "auto": chosen by the
    path), rename its columns to the long format's (`columns`: data.columns, long-format name ->
    the source's name), then type and tag every part the same way."""
    path = Path(path)
    names = {**IDENTITY, **(columns or {})}
    frames = []
    reader = sources.choose(path, source)
    for origin, frame in reader.read_columns(path, {k: v for k, v in names.items() if v}):
        frame = map_columns(frame, names, origin, single=path.stem)
        require_columns(frame, origin)
        frames.append(coerce(with_bookkeeping(frame, source=origin), timezone))
    try:
        # "relaxed": covariates may differ in width between files (i32 vs i64); the required
        # columns are already typed alike by coerce.
        return pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as err:
        raise DataSourceError(
            f"{path}: the files disagree on column types and cannot be combined ({err}); "
            "give each column the same type in every file"
        ) from None


IDENTITY: dict[str, str | None] = {c: c for c in REQUIRED}
FIX = (
    "set data.columns in params.yaml to this file's names, e.g. data.columns: {series_id: store, "
    "timestamp: date, value: sales} (a single-series file needs no id column)"
)


def map_columns(
    frame: pl.DataFrame, names: Mapping[str, str | None], where: str, single: str = "series"
) -> pl.DataFrame:
    """`frame`'s columns renamed from the source's names (`names`: data.columns) to the long
    format's. Without an id column (`names[series_id]` None, or the default name absent while
    the time and value columns are there) the file is one series, named `single`."""
    names = {**IDENTITY, **names}
    have = set(frame.columns)
    sid = names[SERIES_ID]
    one_series = sid is None or (
        sid == SERIES_ID and sid not in have and {names[TIMESTAMP], names[VALUE]} - {None} <= have
    )
    wanted = {
        k: v for k, v in names.items() if v is not None and not (k == SERIES_ID and one_series)
    }
    missing = [k for k, v in wanted.items() if v not in have]
    if missing:
        moved = any(v not in (None, k) for k, v in names.items())
        say = ", ".join(f"{names[k]} (data.columns.{k})" if moved else names[k] for k in missing)
        found = ", ".join(clip(c) for c in frame.columns) or "(none)"
        raise SourceMismatch(
            f"missing required column(s) {say}; found columns: {found}", where, FIX
        )
    clash = [k for k, v in wanted.items() if v != k and k in have]
    if clash:
        raise SourceMismatch(
            f"column(s) {', '.join(clash)} are in the file, but data.columns takes "
            f"{', '.join(f'{k} from {wanted[k]}' for k in clash)}",
            where,
            f"rename or drop the file's {', '.join(clash)} column",
        )
    out = frame.rename({v: k for k, v in wanted.items() if v != k})
    if one_series:
        out = out.with_columns(pl.lit(single, dtype=pl.String).alias(SERIES_ID))
    return out


def require_columns(frame: pl.DataFrame, where: str) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataSourceError(
            f"{where}: missing required column(s) {', '.join(missing)}; "
            f"found columns: {', '.join(frame.columns) or '(none)'}. The long format needs "
            f"{', '.join(REQUIRED)} (one row per series and timestamp; data.columns maps other "
            "names onto them)"
        )


def with_bookkeeping(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Add the row/source/raw-text columns unless an earlier step already did."""
    missing = {
        ROW: _row_numbers(frame),
        SOURCE: pl.lit(source, dtype=pl.String),
        RAW_TIMESTAMP: pl.lit(None, dtype=pl.String),
        RAW_VALUE: pl.lit(None, dtype=pl.String),
    }
    return frame.with_columns(**{k: v for k, v in missing.items() if k not in frame.columns})


def _row_numbers(frame: pl.DataFrame) -> pl.Series:
    """1..height as UInt32, split into the same chunks as the data columns.

    A column chunked differently from the others (as `pl.int_range` would be: one chunk beside
    a Parquet file's row groups) makes polars rechunk, i.e. copy, the whole frame on the next
    select: 300 MB at 10M rows.
    """
    numbers = pl.Series(ROW, np.arange(1, frame.height + 1, dtype=np.uint32))
    lengths = frame.to_series(0).chunk_lengths() if frame.width and frame.height else []
    if len(lengths) < 2:
        return numbers
    bounds = np.cumsum([0, *lengths]).tolist()
    pieces = [numbers.slice(lo, hi - lo) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    return pl.concat(pieces, rechunk=False)


# A time of day followed by a UTC offset: "2000-01-01T00:00:00+05:00" (a date alone never is).
_HAS_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})$"


def _parse_timestamps(text: pl.Expr, timezone: str) -> pl.Expr:
    """One rule for time zones: naive timestamps are calendar times in `timezone` (kept as they
    are); timestamps with a UTC offset are converted to `timezone`. The pipeline then works on
    naive calendar times, which the frequency grid checks as usual."""
    text = text.str.strip_chars()
    naive = [text.str.to_datetime(f, time_unit="us", strict=False) for f in _NAIVE_FORMATS]
    offset = [
        text.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False)
        .dt.convert_time_zone(timezone)
        .dt.replace_time_zone(None)
        for f in _OFFSET_FORMATS
    ]
    return pl.coalesce(naive + offset)


def _refuse_mixed_offsets(frame: pl.DataFrame) -> None:
    """Naive and offset timestamps in one source cannot both be right: a naive one is local
    time, an offset one says its own; mixing them usually means two exports of different
    systems. Named with the offsets and rows seen."""
    text = frame[TIMESTAMP].str.strip_chars()
    aware = text.str.contains(_HAS_OFFSET).fill_null(False)
    naive = text.is_not_null() & ~aware & (text != "")
    if not (aware.any() and naive.any()):
        return
    offsets = text.filter(aware).str.extract(r"(Z|[+-]\d{2}:?\d{2})$").unique().sort().to_list()
    rows = frame[ROW] if ROW in frame.columns else pl.Series(range(1, frame.height + 1))
    first_aware, first_naive = rows.filter(aware)[0], rows.filter(naive)[0]
    source = frame[SOURCE][0] if SOURCE in frame.columns else "<frame>"
    raise DataSourceError(
        f"{clip(source)}: timestamps mix UTC offsets ({', '.join(clip(o) for o in offsets[:5])}; "
        f"{int(aware.sum())} rows, first row {first_aware}) with naive ones ({int(naive.sum())} "
        f"rows, first row {first_naive}). Naive timestamps are calendar times in "
        "data.timezone and offsets are converted to it: give every row an offset, or none"
    )


def coerce(frame: pl.DataFrame, timezone: str = "UTC") -> pl.DataFrame:
    """Give the required columns their types; text that doesn't parse becomes null + raw text.

    Idempotent; a column already of its type is left untouched (a no-op cast in `with_columns`
    makes polars materialise the frame's constant bookkeeping columns: 300 MB at 10M rows).
    Types that can't be converted sensibly (e.g. a boolean value column) are left
    alone so pandera's dtype check reports them.
    """
    schema = frame.collect_schema()
    exprs: list[pl.Expr | pl.Series] = []
    if schema[SERIES_ID].is_numeric() or schema[SERIES_ID] in (pl.Categorical, pl.Enum):
        exprs.append(pl.col(SERIES_ID).cast(pl.String))
    ts = schema[TIMESTAMP]
    if ts == pl.String:
        exprs += _parsed(frame, TIMESTAMP, RAW_TIMESTAMP, _timestamp_parsers(frame, timezone))
    elif isinstance(ts, pl.Datetime) and ts.time_zone is not None:
        # Zone-aware typed column (Parquet): the same rule, converted to data.timezone.
        local = pl.col(TIMESTAMP).dt.convert_time_zone(timezone).dt.replace_time_zone(None)
        exprs.append(local.cast(TIMESTAMP_DTYPE))
    elif ts != TIMESTAMP_DTYPE and (
        ts == pl.Date or (isinstance(ts, pl.Datetime) and ts.time_zone is None)
    ):
        exprs.append(pl.col(TIMESTAMP).cast(TIMESTAMP_DTYPE))
    val = schema[VALUE]
    if val == pl.String:
        number = (lambda t: t.cast(pl.Float64, strict=False),) * 2
        exprs += _parsed(frame, VALUE, RAW_VALUE, number)
    elif val.is_numeric() and val != pl.Float64:
        exprs.append(pl.col(VALUE).cast(pl.Float64))
    return frame.with_columns(exprs)


def _timestamp_parsers(frame: pl.DataFrame, timezone: str) -> tuple:
    """(fast, full) timestamp parsers: `fast` the one format that fits the first timestamp (most
    exports write every row alike), `full` every accepted format after the mixed-offset check.
    One format costs one pass; trying all of them costs eight (5x slower at 10M CSV rows)."""
    first = frame[TIMESTAMP].drop_nulls().head(1).str.strip_chars()
    fits = [p for p in _single_formats(timezone) if _apply(p, first, TIMESTAMP).null_count() == 0]
    fast = fits[0] if first.len() and fits else None

    def full(text: pl.Expr) -> pl.Expr:
        _refuse_mixed_offsets(frame)
        return _parse_timestamps(text, timezone)

    return (fast, full)


def _single_formats(timezone: str) -> list:
    naive = [
        lambda t, f=f: t.str.to_datetime(f, time_unit="us", strict=False) for f in _NAIVE_FORMATS
    ]
    offset = [
        lambda t, f=f: (
            t.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False)
            .dt.convert_time_zone(timezone)
            .dt.replace_time_zone(None)
        )
        for f in _OFFSET_FORMATS
    ]
    return naive + offset


def _parsed(frame: pl.DataFrame, column: str, raw: str, parsers: tuple) -> list[pl.Series]:
    """`column` parsed, and `raw`: the text of cells that did not parse (kept from an earlier
    pass where it already holds some).

    `fast` parses the text as it is in one pass; only the cells it leaves null go through `full`
    (after stripping blanks), so a clean column costs one pass and a bad cell is found all the
    same. A format matches a cell exactly or not at all, so no cell parses differently either way.
    """
    fast, full = parsers
    text = frame[column]
    if fast is None:
        rows, cells = None, text
        parsed = retry = _apply(full, text.str.strip_chars(), column)
    else:
        parsed = _apply(fast, text, column)
        missed = parsed.is_null() & text.is_not_null()
        if not missed.any():
            return [parsed]
        rows = missed.arg_true()
        cells = text.gather(rows)
        retry = _apply(full, cells.str.strip_chars(), column)
        parsed = parsed.scatter(rows, retry)
    failed = (retry.is_null() & cells.is_not_null() & (cells.str.strip_chars() != "")).fill_null(
        False
    )
    if rows is None:
        new_raw = pl.select(pl.when(failed).then(cells)).to_series()
    else:
        new_raw = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
        if failed.any():
            new_raw = new_raw.scatter(rows.filter(failed), cells.filter(failed))
    return [parsed, pl.select(pl.coalesce(frame[raw], new_raw)).to_series().alias(raw)]


def _apply(parser, text: pl.Series, name: str) -> pl.Series:
    return text.to_frame(name).select(parser(pl.col(name))).to_series().alias(name)

"""Ingest: read the raw long-format source and validate it before any stage trusts it.

`read_source` turns a CSV/Parquet file (or a directory of them) into a typed frame and remembers,
per row, the file and row it came from and the raw text of any timestamp or value that did not
parse. `validate` runs the pandera schema (tasks.schema) plus the per-series checks pandera can't
express (order, time grid, gaps, history length), collects every failure at once and raises one
DataValidationError with a readable report. `summarize` describes the validated frame.

Bookkeeping columns start with "_" and never leave `validate`. Its output carries one extra
boolean column, `filled` (tasks.schema.FILLED): True for rows created by gap filling, so that
`summarize` (and any later stage) can tell imputed values from observed ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandera.polars as pa
import polars as pl

from tasks.columns import KEY, REQUIRED, SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config
from tasks.errors import DataSourceError, DataValidationError
from tasks.schema import FILLED, TIMESTAMP_DTYPE, build_schema, covariate_columns
from tasks.timefmt import iso

ROW = "_row"  # 1-based data row in its file (header not counted) or position in a given frame
SOURCE = "_source"  # the file the row came from
RAW_TIMESTAMP = "_raw_timestamp"  # text of a timestamp that did not parse, else null
RAW_VALUE = "_raw_value"  # text of a value that is not a number, else null
BOOKKEEPING = (ROW, SOURCE, RAW_TIMESTAMP, RAW_VALUE)
# Integer code of a series (first-appearance order) in the per-series checks: grouping and
# joining 10M rows on a UInt32 instead of the series_id text is several times faster and
# keeps the exploded grid free of a repeated string column.
SID = "_sid"

SUPPORTED = (".csv", ".parquet")
MAX_ROWS_SHOWN = 20
# Rows checked at once (whole series): the joins and pandera's checks need ~400 bytes per row
# they look at, so 10M rows are checked in 50 slices instead of in one go (measured at 10M rows:
# peak 2.2 GiB above the data in one go, 0.1 GiB in slices of 200k, at 4x the speed).
CHUNK_ROWS = 200_000

FAILURE_SCHEMA = {
    "check": pl.String,
    "column": pl.String,
    SERIES_ID: pl.String,
    TIMESTAMP: TIMESTAMP_DTYPE,
    VALUE: pl.Float64,
    "row": pl.Int64,
    "source": pl.String,
    "detail": pl.String,
}

# ISO 8601 dates and datetimes ("T" or space, optional seconds/fraction, optional UTC offset).
_NAIVE_FORMATS = ["%Y-%m-%d"] + [
    f"%Y-%m-%d{sep}{time}" for sep in ("T", " ") for time in ("%H:%M:%S%.f", "%H:%M")
]
_OFFSET_FORMATS = [f"%Y-%m-%d{sep}%H:%M:%S%.f%#z" for sep in ("T", " ")]


# ------------------------------------------------------------------------------------ reading
def read_source(path: str | Path) -> pl.DataFrame:
    """Read a CSV/Parquet file, or every *.csv/*.parquet in a directory (sorted by name)."""
    path = Path(path)
    frames = [_read_file(f) for f in _source_files(path)]
    try:
        # "relaxed": covariates may differ in width between files (i32 vs i64); the required
        # columns are already typed alike by _coerce.
        return pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as err:
        raise DataSourceError(
            f"{path}: the files disagree on column types and cannot be combined ({err}); "
            "give each column the same type in every file"
        ) from None


def _source_files(path: Path) -> list[Path]:
    hint = "set data.path in params.yaml to a .csv or .parquet file or a directory of them"
    if not path.exists():
        raise DataSourceError(f"data source {path} does not exist ({hint})")
    if path.is_file():
        if path.suffix.lower() not in SUPPORTED:
            raise DataSourceError(
                f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
                f"supported: {', '.join(SUPPORTED)} ({hint})"
            )
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED)
    if not files:
        found = sorted(p.name for p in path.iterdir())[:10]
        raise DataSourceError(
            f"directory {path} holds no {' or '.join(SUPPORTED)} files "
            f"(found: {', '.join(found) or 'nothing'}); {hint}"
        )
    return files


def _read_file(path: Path) -> pl.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            # Required columns as text: a stray "abc" in `value` or a bad date must become a
            # reported row, not a reader crash (polars infers types from the first rows only).
            overrides = {SERIES_ID: pl.String, TIMESTAMP: pl.String, VALUE: pl.String}
            frame = pl.read_csv(path, schema_overrides=overrides, infer_schema_length=10_000)
        else:
            frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataSourceError(
            f"{path}: cannot read this file ({type(err).__name__}: {_first_line(err)}); "
            "check that it is a valid, non-empty CSV (with a header row) or Parquet file"
        ) from None
    _require_columns(frame, str(path))
    return _coerce(_with_bookkeeping(frame, source=str(path)))


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def _require_columns(frame: pl.DataFrame, where: str) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataSourceError(
            f"{where}: missing required column(s) {', '.join(missing)}; "
            f"found columns: {', '.join(frame.columns) or '(none)'}. The long format needs "
            f"{', '.join(REQUIRED)} (one row per series and timestamp)"
        )


def _with_bookkeeping(frame: pl.DataFrame, source: str) -> pl.DataFrame:
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


def _parse_timestamps(text: pl.Expr) -> pl.Expr:
    text = text.str.strip_chars()
    naive = [text.str.to_datetime(f, time_unit="us", strict=False) for f in _NAIVE_FORMATS]
    # Offsets are converted to UTC and the zone dropped: the whole pipeline is zone-naive.
    offset = [
        text.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False).dt.replace_time_zone(
            None
        )
        for f in _OFFSET_FORMATS
    ]
    return pl.coalesce(naive + offset)


def _coerce(frame: pl.DataFrame) -> pl.DataFrame:
    """Give the required columns their types; text that doesn't parse becomes null + raw text.

    Idempotent; a column already of its type is left untouched (a no-op cast in `with_columns`
    makes polars materialise the frame's constant bookkeeping columns: 300 MB at 10M rows).
    Types that can't be converted sensibly (e.g. a boolean value column) are left
    alone so pandera's dtype check reports them.
    """
    schema = frame.collect_schema()
    exprs: list[pl.Expr] = []
    if schema[SERIES_ID].is_numeric() or schema[SERIES_ID] in (pl.Categorical, pl.Enum):
        exprs.append(pl.col(SERIES_ID).cast(pl.String))
    ts = schema[TIMESTAMP]
    if ts == pl.String:
        parsed = _parse_timestamps(pl.col(TIMESTAMP))
        exprs += [parsed, _raw_if_unparsed(TIMESTAMP, parsed, RAW_TIMESTAMP)]
    elif ts != TIMESTAMP_DTYPE and (
        ts == pl.Date or (isinstance(ts, pl.Datetime) and ts.time_zone is None)
    ):
        exprs.append(pl.col(TIMESTAMP).cast(TIMESTAMP_DTYPE))
    val = schema[VALUE]
    if val == pl.String:
        parsed = pl.col(VALUE).str.strip_chars().cast(pl.Float64, strict=False)
        exprs += [parsed, _raw_if_unparsed(VALUE, parsed, RAW_VALUE)]
    elif val.is_numeric() and val != pl.Float64:
        exprs.append(pl.col(VALUE).cast(pl.Float64))
    return frame.with_columns(exprs)


def _raw_if_unparsed(column: str, parsed: pl.Expr, raw: str) -> pl.Expr:
    text = pl.col(column).cast(pl.String)
    failed = text.is_not_null() & (text.str.strip_chars() != "") & parsed.is_null()
    return pl.coalesce(pl.col(raw), pl.when(failed).then(text)).alias(raw)


# ------------------------------------------------------------------------------------ failures
def _failures(
    frame: pl.DataFrame, check: str, column: str, detail: pl.Expr | None = None
) -> pl.DataFrame:
    """Rows of `frame` (which has the bookkeeping columns) as failure records of one check."""
    return frame.select(
        pl.lit(check).alias("check"),
        pl.lit(column).alias("column"),
        pl.col(SERIES_ID).cast(pl.String),
        pl.col(TIMESTAMP).cast(TIMESTAMP_DTYPE, strict=False),
        pl.col(VALUE).cast(pl.Float64, strict=False),
        pl.col(ROW).cast(pl.Int64).alias("row"),
        pl.col(SOURCE).alias("source"),
        (pl.lit(None) if detail is None else detail).cast(pl.String).alias("detail"),
    )


def _empty_failures() -> pl.DataFrame:
    return pl.DataFrame(schema=FAILURE_SCHEMA)


def _parse_failures(frame: pl.DataFrame) -> list[pl.DataFrame]:
    return [
        _failures(
            frame.filter(pl.col(RAW_TIMESTAMP).is_not_null()),
            "timestamp_parse",
            TIMESTAMP,
            pl.format("unparseable timestamp '{}'", pl.col(RAW_TIMESTAMP)),
        ),
        _failures(
            frame.filter(pl.col(RAW_VALUE).is_not_null()),
            "value_type",
            VALUE,
            pl.format("not a number: '{}'", pl.col(RAW_VALUE)),
        ),
    ]


# pandera's own check names -> the names this report uses.
_PANDERA_CHECKS = {"not_nullable": "not_null", "multiple_fields_uniqueness": "unique_key"}


def _schema_failures(frame: pl.DataFrame, cfg: Config) -> list[pl.DataFrame]:
    # pandera sees only the long format; its failure `index` is the position in `frame`.
    data = frame.select(*REQUIRED, *_covariates(frame))
    try:
        build_schema(cfg).validate(data, lazy=True)
        return []
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    cases = cases.with_columns(
        pl.col("check").replace(_PANDERA_CHECKS).str.replace(r"^dtype\(.*\)$", "dtype"),
        pl.col("column").replace({"long_format": None}),
    )
    rowwise = cases.filter(pl.col("index").is_not_null() & (pl.col("check") != "dtype"))
    joined = (
        rowwise.select("check", "column", "index")
        .unique(maintain_order=True)
        .join(frame.with_row_index("index").cast({"index": pl.Int32}), on="index", how="left")
    )
    joined = joined.filter(~_reported_elsewhere())
    out = [
        _failures(part, check, column or _column_for(check, frame), _detail_for(check, frame))
        for (check, column), part in joined.group_by("check", "column", maintain_order=True)
    ]
    schemawide = cases.filter(pl.col("index").is_null() | (pl.col("check") == "dtype"))
    out += [
        _schemawide_failure(row, frame)
        for row in schemawide.unique(maintain_order=True).iter_rows(named=True)
    ]
    return out


def _reported_elsewhere() -> pl.Expr:
    """not_null hits that another check already names more precisely."""
    is_null_check = pl.col("check") == "not_null"
    unparsed = (pl.col("column") == TIMESTAMP) & pl.col(RAW_TIMESTAMP).is_not_null()
    not_number = (pl.col("column") == VALUE) & pl.col(RAW_VALUE).is_not_null()
    # pandera's polars backend counts NaN as null in a float column; `finite` reports it.
    nan = (pl.col("column") == VALUE) & pl.col(VALUE).cast(pl.Float64, strict=False).is_nan()
    nan = nan.fill_null(False)
    return is_null_check & (unparsed | not_number | nan)


def _column_for(check: str, frame: pl.DataFrame) -> str:
    if check == "unique_key":
        return ", ".join(KEY)
    return ", ".join(_covariates(frame)) or "(covariates)"


def _detail_for(check: str, frame: pl.DataFrame) -> pl.Expr | None:
    if check != "covariate_finite":
        return None
    bad = [
        pl.when(~pl.col(c).cast(pl.Float64, strict=False).is_finite().fill_null(False)).then(
            pl.format("{}={}", pl.lit(c), pl.col(c).cast(pl.String).fill_null("null"))
        )
        for c in _covariates(frame)
    ]
    return pl.concat_str(bad, separator=", ", ignore_nulls=True) if bad else None


def _covariates(frame: pl.DataFrame) -> list[str]:
    return [c for c in covariate_columns(frame.columns) if c not in BOOKKEEPING]


def _schemawide_failure(case: dict, frame: pl.DataFrame) -> pl.DataFrame:
    """A failure of a whole column (wrong dtype, text covariate): no single row to point at."""
    check, column = case["check"], case["column"]
    if check == "dtype":
        detail = f"column {column} has type {frame.schema[column]}, expected {case['failure_case']}"
    elif check == "covariate_numeric":
        column = ", ".join(c for c in _covariates(frame) if not frame.schema[c].is_numeric())
        detail = f"non-numeric covariate column(s): {column}"
    else:
        column = column or _column_for(check, frame)
        detail = str(case["failure_case"])
    record = dict.fromkeys(FAILURE_SCHEMA) | {"check": check, "column": column, "detail": detail}
    return pl.DataFrame([record], schema=FAILURE_SCHEMA)


# ------------------------------------------------------------------------------ series checks
def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with a usable key (the per-series checks need a series and a parsed timestamp),
    with their series' integer code SID."""
    keyed = frame.filter(pl.col(SERIES_ID).is_not_null() & pl.col(TIMESTAMP).is_not_null())
    ids = keyed.select(pl.col(SERIES_ID).unique(maintain_order=True)).with_row_index(SID)
    return keyed.join(ids, on=SERIES_ID, how="left", maintain_order="left")


def _series_ids(keyed: pl.DataFrame) -> pl.DataFrame:
    """SID -> series_id, one row per series."""
    return keyed.group_by(SID, maintain_order=True).agg(pl.col(SERIES_ID).first())


def _grid(keyed: pl.DataFrame, frequency: str) -> pl.DataFrame:
    """Every (SID, timestamp) a regular series would have: first to last, every `frequency`.

    Anchored at each series' first timestamp; month-like steps use calendar arithmetic, so
    "1mo" from 1949-01-01 gives the first of every month. Columns SID, lo, timestamp.
    """
    bounds = keyed.group_by(SID, maintain_order=True).agg(
        lo=pl.col(TIMESTAMP).min(), hi=pl.col(TIMESTAMP).max()
    )
    steps = pl.datetime_ranges("lo", "hi", frequency, time_unit="us").alias(TIMESTAMP)
    return bounds.select(SID, "lo", steps).explode(TIMESTAMP)


def _series_failures(
    frame: pl.DataFrame, keyed: pl.DataFrame, grid: pl.DataFrame, cfg: Config
) -> list[pl.DataFrame]:
    out = [_order_failures(keyed), _off_grid_failures(keyed, grid)]
    if cfg.data.fill_gaps == "error":
        out.append(_gap_failures(keyed, grid))
    out.append(_history_failures(grid, keyed, cfg))
    if frame.height == 0:
        record = dict.fromkeys(FAILURE_SCHEMA) | {
            "check": "non_empty",
            "column": ", ".join(REQUIRED),
            "detail": "the source holds no data rows",
        }
        out.append(pl.DataFrame([record], schema=FAILURE_SCHEMA))
    return out


def _fmt_ts(expr: pl.Expr) -> pl.Expr:
    # Dates print as dates: monthly data reads "1949-02-15", not "1949-02-15 00:00:00".
    return expr.dt.to_string("%Y-%m-%d %H:%M:%S%.f").str.replace(r" 00:00:00$", "")


def _order_failures(keyed: pl.DataFrame) -> pl.DataFrame:
    # Compare with the latest timestamp seen so far in the same series (source order), so one
    # misplaced row is reported once instead of flagging every row after it.
    latest = pl.col(TIMESTAMP).cum_max().shift(1).over(SID)
    bad = keyed.with_columns(_latest=latest).filter(pl.col(TIMESTAMP) < pl.col("_latest"))
    detail = pl.format("comes after {} in the source", _fmt_ts(pl.col("_latest")))
    return _failures(bad, "increasing_time", TIMESTAMP, detail)


def _off_grid_failures(keyed: pl.DataFrame, grid: pl.DataFrame) -> pl.DataFrame:
    bounds = keyed.group_by(SID).agg(lo=pl.col(TIMESTAMP).min())
    bad = keyed.join(grid.select(SID, TIMESTAMP), on=[SID, TIMESTAMP], how="anti").join(
        bounds, on=SID, how="left"
    )
    detail = pl.format("off the grid that starts at {}", _fmt_ts(pl.col("lo")))
    return _failures(bad, "on_grid", TIMESTAMP, detail)


def _gap_failures(keyed: pl.DataFrame, grid: pl.DataFrame) -> pl.DataFrame:
    missing = grid.join(keyed.select(SID, TIMESTAMP), on=[SID, TIMESTAMP], how="anti")
    missing = missing.join(_series_ids(keyed), on=SID, how="left").with_columns(
        pl.lit(None, dtype=pl.Float64).alias(VALUE),
        pl.lit(None, dtype=pl.Int64).alias(ROW),
        pl.lit(None, dtype=pl.String).alias(SOURCE),
    )
    return _failures(missing.sort(KEY), "gap", TIMESTAMP, pl.lit("no row for this timestamp"))


def _history_failures(grid: pl.DataFrame, grid_keyed: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    # Counted on the grid: that is the series' length once gaps are filled.
    short = (
        grid.group_by(SID, maintain_order=True)
        .agg(steps=pl.len(), **{TIMESTAMP: pl.col(TIMESTAMP).max()})
        .filter(pl.col("steps") < cfg.min_history)
        .join(_series_ids(grid_keyed), on=SID, how="left")
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias(VALUE),
            pl.lit(None, dtype=pl.Int64).alias(ROW),
            pl.lit(None, dtype=pl.String).alias(SOURCE),
        )
    )
    detail = pl.format("has {} steps, needs at least {}", pl.col("steps"), cfg.min_history)
    return _failures(short, "min_history", SERIES_ID, detail)


# ------------------------------------------------------------------------------------ report
def _explanations(cfg: Config) -> dict[str, tuple[str, str]]:
    """check -> (what failed, how to fix it)."""
    d, p, f = cfg.data, cfg.prepare, cfg.forecast
    fill_hint = "or delete them and set data.fill_gaps: forward | interpolate in params.yaml"
    return {
        "timestamp_parse": (
            "timestamps that are not ISO dates or datetimes",
            "write them as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (a real calendar date)",
        ),
        "value_type": (
            "values that are not numbers",
            "use plain numbers with '.' as decimal point, no units or thousands separators",
        ),
        "dtype": (
            "columns of the wrong type",
            "series_id text, timestamp a date/datetime (ISO text in CSV), value numeric",
        ),
        "not_null": ("empty entries", f"fill them in, {fill_hint}"),
        "finite": ("NaN or infinite values", f"replace them with real measurements, {fill_hint}"),
        "min_value": (
            f"values below data.min_value = {d.min_value}",
            "correct the values, or change data.min_value in params.yaml (null: no bound)",
        ),
        "max_value": (
            f"values above data.max_value = {d.max_value}",
            "correct the values, or change data.max_value in params.yaml (null: no bound)",
        ),
        "positive_for_log": (
            "values <= 0, which prepare.transform = 'log' cannot take",
            "correct the values, or set prepare.transform: none in params.yaml",
        ),
        "unique_key": (
            "rows that share a (series_id, timestamp) pair",
            "keep exactly one row per series and timestamp (delete or aggregate the duplicates)",
        ),
        "covariate_numeric": (
            "extra columns that are not numeric",
            "extra columns are model covariates: make them numbers or drop them from the source",
        ),
        "covariate_finite": (
            "covariates that are empty, NaN or infinite",
            "give every row a finite number in every covariate column",
        ),
        "increasing_time": (
            "rows out of time order within their series (source order)",
            "sort each series by timestamp in the source (files in a directory are read in "
            "name order)",
        ),
        "on_grid": (
            f"timestamps off the data.frequency = {d.frequency} grid (it starts at each "
            "series' first timestamp)",
            "move them onto the grid (e.g. the 1st of the month for 1mo), or set "
            "data.frequency in params.yaml to the data's real spacing",
        ),
        "gap": (
            "timestamps missing inside a series (data.fill_gaps = error)",
            "add the missing rows, or set data.fill_gaps: forward | interpolate in params.yaml",
        ),
        "min_history": (
            f"series shorter than the {cfg.min_history} steps the params need",
            f"min_history = {cfg.min_history} is driven by prepare.lookback ({p.lookback}), "
            f"forecast.horizon ({f.horizon}, counted twice: test tail and forecast) and "
            f"prepare.validation_steps ({p.validation_steps}); supply longer series or lower "
            "these in params.yaml",
        ),
        "non_empty": ("no data", "point data.path at a file with rows"),
    }


def _format_row(row: dict) -> str:
    where = f"{row['source']} row {row['row']}: " if row["row"] is not None else ""
    fields = []
    if row[SERIES_ID] is not None:
        fields.append(f"series_id={row[SERIES_ID]}")
    if row[TIMESTAMP] is not None:
        ts = row[TIMESTAMP].isoformat(sep=" ").removesuffix(" 00:00:00")
        fields.append(f"timestamp={ts}")
    if row["row"] is not None:
        fields.append(f"value={'null' if row[VALUE] is None else row[VALUE]}")
    detail = f" ({row['detail']})" if row["detail"] else ""
    return f"    {where}{' '.join(fields)}{detail}".rstrip()


def _report(failures: pl.DataFrame, frame: pl.DataFrame, cfg: Config) -> str:
    explain = _explanations(cfg)
    groups = failures.group_by("check", "column", maintain_order=True)
    sections = []
    for (check, column), part in groups:
        what, fix = explain.get(check, (check, "see the rows above"))
        lines = [f"[{check}] column {column}: {part.height} failing - {what}"]
        lines += [_format_row(r) for r in part.head(MAX_ROWS_SHOWN).iter_rows(named=True)]
        if part.height > MAX_ROWS_SHOWN:
            lines.append(f"    ... and {part.height - MAX_ROWS_SHOWN} more")
        lines.append(f"  fix: {fix}")
        sections.append("\n".join(lines))
    sources = ", ".join(frame[SOURCE].unique(maintain_order=True).to_list()[:5])
    head = (
        f"data validation failed: {len(sections)} check(s), {failures.height} failure(s) "
        f"in {frame.height} rows of {sources or '(no rows)'} "
        "(row = data row in its file, header not counted)"
    )
    return "\n\n".join([head, *sections])


# ------------------------------------------------------------------------------------ public
def validate(df: pl.DataFrame, cfg: Config, chunk_rows: int = CHUNK_ROWS) -> pl.DataFrame:
    """Check `df` against the long format and `cfg`; return it sorted, typed and gap-filled.

    Every check runs before anything is raised, so one DataValidationError lists all problems.
    The checks run on chunks of whole series (about `chunk_rows` rows each), so their working
    memory stays bounded however many rows there are; when nothing needs filling or sorting the
    result shares its buffers with `df`.
    """
    _require_columns(df, "validate")
    frame = _coerce(_with_bookkeeping(df, source="<frame>"))
    failures, outputs = [_empty_failures()], []
    for part in series_chunks(frame, chunk_rows):
        keyed = _keyed(part)
        grid = _grid(keyed, cfg.data.frequency)
        failures += [
            *_parse_failures(part),
            *_schema_failures(part, cfg),
            *_series_failures(part, keyed, grid, cfg),
        ]
        if not any(f.height for f in failures):
            # Nothing dropped, nothing to fill: keep the part itself, not keyed's joined copy.
            rows = part if part.height == keyed.height == grid.height else keyed
            outputs.append(_fill_gaps(rows.drop(BOOKKEEPING), grid.drop("lo"), cfg.data.fill_gaps))
        del keyed, grid
    failed = pl.concat(failures, how="vertical")
    if failed.height:
        raise DataValidationError(_report(failed, frame, cfg), failed)
    return _in_key_order(outputs)


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
    """Concatenate validated chunks (each sorted by key, series disjoint between chunks); sort
    again only when the chunks themselves are out of series order."""
    parts = [p for p in parts if p.height] or parts[:1]
    out = pl.concat(parts, how="vertical", rechunk=False)
    firsts = [p[SERIES_ID][0] for p in parts[1:]]
    lasts = [p[SERIES_ID][-1] for p in parts[:-1]]
    if any(last > first for last, first in zip(lasts, firsts, strict=True)):
        out = out.sort(KEY)
    return out


def _fill_gaps(frame: pl.DataFrame, grid: pl.DataFrame, method: str) -> pl.DataFrame:
    """Left-join onto the grid (a no-op when nothing is missing) and fill the new rows.

    Reached only after validation passed: no null values remain, so a null after the join is a
    gap. Covariates are filled the same way as the value.
    """
    covariates = [c for c in _covariates(frame) if c != SID]
    was_filled = pl.col(FILLED).fill_null(True) if FILLED in frame.columns else pl.lit(False)
    if frame.height == grid.height:
        # Validation passed, so every row is unique and on its grid: equal counts mean the rows
        # cover the grid exactly and nothing is missing. Skip the join; sort only if needed
        # (each series is already in time order, so sorted contiguous ids mean sorted keys).
        ids = frame[SERIES_ID]
        if not (ids.len() < 2 or (ids.slice(1) >= ids.slice(0, ids.len() - 1)).all()):
            frame = frame.sort(KEY)
        return frame.with_columns(was_filled.alias(FILLED)).select(*REQUIRED, *covariates, FILLED)
    grid = grid.join(_series_ids(frame), on=SID, how="left")
    full = (
        grid.join(frame.drop(SID), on=KEY, how="left")
        .with_columns(was_filled.or_(pl.col(VALUE).is_null()).alias(FILLED))
        .sort(KEY)
    )
    if method == "interpolate":
        fill = [pl.col(c).interpolate().over(SERIES_ID) for c in (VALUE, *covariates)]
    else:
        fill = [pl.col(c).forward_fill().over(SERIES_ID) for c in (VALUE, *covariates)]
    return full.with_columns(fill).select(*REQUIRED, *covariates, FILLED)


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
        "covariates": [c for c in covariate_columns(df.columns) if c not in BOOKKEEPING],
    }

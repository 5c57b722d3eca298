"""The failure report: each failed check with what failed, its first rows (file and row) and
how to fix it, worded from the params that drive it."""

from __future__ import annotations

import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config
from tasks.ingest.read import SOURCE
from tasks.ingest.schema import MAX_SCALABLE
from tasks.series_ids import show
from tasks.textfmt import clip

MAX_ROWS_SHOWN = 20


def _explanations(cfg: Config) -> dict[str, tuple[str, str]]:
    """check -> (what failed, how to fix it)."""
    d, f = cfg.data, cfg.forecast
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
            "series' first timestamp and keeps its day of month, or month ends)",
            "move them onto the grid (the same day every month, or every month's last day, "
            "for 1mo), or set data.frequency in params.yaml to the data's real spacing",
        ),
        "gap": (
            "timestamps missing inside a series (data.fill_gaps = error)",
            "add the missing rows, or set data.fill_gaps: forward | interpolate in params.yaml",
        ),
        "min_history": (
            f"series shorter than the {cfg.min_history} step(s) the simplest candidate (naive) "
            "needs",
            "supply at least one observation per series; a series too short for the LSTM is "
            "forecast by the other candidates, not quarantined",
        ),
        "non_empty": ("no data", "point data.path at a file with rows"),
        "max_fill": (
            f"series that gap filling would mostly invent (> data.max_fill_fraction = "
            f"{d.max_fill_fraction} of their steps)",
            "check data.frequency against the median step shown, fix the gaps at the source, "
            "or raise data.max_fill_fraction",
        ),
        "calendar_time": (
            f"a time of day on {d.frequency} data (calendar periods start at midnight)",
            "timestamps with a UTC offset are converted to data.timezone: set it to the zone the "
            "data was recorded in (e.g. Asia/Karachi for +05:00), or strip the times",
        ),
        "constant": (
            f"series constant over their training part (all but the last forecast.horizon = "
            f"{f.horizon} steps): nothing to learn, and MASE's scale would be 0",
            "check the export of these series (a stuck sensor, a default value)",
        ),
        "scalable": (
            f"values too large to scale (|value| > {MAX_SCALABLE:g}: the scaler's variance "
            "would overflow)",
            "express the values in a larger unit (e.g. thousands), or set prepare.transform: log",
        ),
    }


def describe(check: str, cfg: Config) -> str:
    """What a failure of `check` means, worded from the params."""
    return _explanations(cfg).get(check, (check, ""))[0]


def _format_row(row: dict) -> str:
    where = f"{clip(row['source'])} row {row['row']}: " if row["row"] is not None else ""
    fields = []
    if row[SERIES_ID] is not None:
        fields.append(f"series_id={show(row[SERIES_ID])}")
    if row[TIMESTAMP] is not None:
        ts = row[TIMESTAMP].isoformat(sep=" ").removesuffix(" 00:00:00")
        fields.append(f"timestamp={ts}")
    if row["row"] is not None:
        fields.append(f"value={'null' if row[VALUE] is None else clip(row[VALUE])}")
    detail = f" ({clip(row['detail'], 200)})" if row["detail"] else ""
    return f"    {where}{' '.join(fields)}{detail}".rstrip()


def format_report(failures: pl.DataFrame, frame: pl.DataFrame, cfg: Config, why: str = "") -> str:
    """The failures by check, then how to fix each; `why` says why they stop the run (rather
    than quarantine the series, data.on_bad_series)."""
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
    sources = ", ".join(clip(s) for s in frame[SOURCE].unique(maintain_order=True).to_list()[:5])
    head = (
        f"data validation failed: {len(sections)} check(s), {failures.height} failure(s) "
        f"in {frame.height} rows of {sources or '(no rows)'} "
        "(row = data row in its file, header not counted)"
    )
    if why:
        head += f"\nstopped because {why}"
    return "\n\n".join([head, *sections])

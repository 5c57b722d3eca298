"""What a later stage cannot hold, refused (or warned about) at ingest, before any work:

- series ids a configured publish target cannot store (tasks.series_ids.unholdable: NUL or an
  over-long id with a PostgreSQL store), which would otherwise fail the run at publish after
  every stage ran;
- a forecast horizon that leaves the calendar: the forecasts of a series ending in 9998-12 with
  a horizon of 24 months are dated in the year 10000, which no ISO date, Python datetime or
  chart can hold;
- ids that differ only by case or surrounding whitespace (`a`, `A`, `a `): a warning, or a
  refusal with data.ambiguous_ids: refuse.

Each refusal is a DataValidationError of the whole source (exit 2, one message naming the ids),
whatever data.on_bad_series says: these are contradictions between the data and the config,
not one broken series.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.config import Config
from tasks.errors import DataValidationError
from tasks.series_ids import ambiguous, show, unholdable

log = logging.getLogger("forecast")

# The last instant every output can hold: Python's datetime (charts, JSON) ends with year 9999.
CALENDAR_END = datetime(9999, 12, 31, 23, 59, 59, 999999)
LISTED = 5  # ids named per problem in a message


def check(frame: pl.DataFrame, cfg: Config) -> None:
    """Refuse what no later stage could hold; warn on ambiguous ids. `frame`: typed by
    tasks.ingest.read.coerce."""
    problems = unholdable(frame[SERIES_ID], cfg)
    problems += _past_calendar(frame, cfg)
    groups = ambiguous(frame[SERIES_ID])
    if groups:
        line = (
            f"{len(groups)} group(s) of series ids differ only by case or surrounding "
            f"whitespace, each published as separate series: {_groups(groups)}"
        )
        if cfg.data.ambiguous_ids == "refuse":
            problems.append(f"{line} (data.ambiguous_ids: refuse; rename them in the source)")
        else:
            log.warning("ingest: %s (data.ambiguous_ids: refuse stops the run instead)", line)
    if problems:
        raise DataValidationError(
            "the source cannot be published as configured; nothing was run:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def _groups(groups: list[list[str]]) -> str:
    shown = ["{" + ", ".join(show(s) for s in g[:LISTED]) + "}" for g in groups[:LISTED]]
    return ", ".join(shown) + (", ..." if len(groups) > LISTED else "")


def _horizon_offset(cfg: Config) -> str:
    """data.frequency times forecast.horizon as one polars duration ("1mo" x 24 -> "24mo")."""
    count, unit = re.fullmatch(r"(\d+)([a-z]+)", cfg.data.frequency).groups()
    return f"{int(count) * cfg.forecast.horizon}{unit}"


def _past_calendar(frame: pl.DataFrame, cfg: Config) -> list[str]:
    lasts = (
        frame.filter(pl.col(SERIES_ID).is_not_null() & pl.col(TIMESTAMP).is_not_null())
        .group_by(SERIES_ID, maintain_order=True)
        .agg(pl.col(TIMESTAMP).max())
        .with_columns(end=pl.col(TIMESTAMP).dt.offset_by(_horizon_offset(cfg)))
        .filter(pl.col("end") > CALENDAR_END)
        # As text: a datetime past 9999 cannot become a Python object.
        .select(SERIES_ID, last=pl.col(TIMESTAMP).dt.to_string("%Y-%m-%dT%H:%M:%S"))
    )
    if not lasts.height:
        return []
    named = ", ".join(
        f"{show(r[SERIES_ID])} (last {r['last']})" for r in lasts.head(LISTED).iter_rows(named=True)
    )
    return [
        f"{lasts.height} series would be forecast past 9999-12-31 (forecast.horizon "
        f"{cfg.forecast.horizon} x data.frequency {cfg.data.frequency}), a date no output can "
        f"hold: {named}{', ...' if lasts.height > LISTED else ''}"
    ]

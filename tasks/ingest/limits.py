"""What a later stage cannot hold, refused (or warned about) at ingest, before any work:

- series ids a configured publish target cannot store (tasks.series_ids.unholdable: NUL or an
  over-long id with a PostgreSQL store), which would otherwise fail the run at publish after
  every stage ran;
- a forecast horizon that leaves the calendar: the forecasts of a series ending in 9998-12 with
  a horizon of 24 months are dated in the year 10000, which no ISO date, Python datetime or
  chart can hold;
- sub-daily data whose local times in data.timezone cross a change of its UTC offset (DST): the
  pipeline works on naive local calendar times, on which such a series cannot be regular: at
  the spring change an hour that does not exist would be on its grid (reported as a gap, or
  filled: a value invented for a time that never was), at the autumn change one local hour
  stands for two instants (two correct rows refused as duplicates, or one hour silently lost).
  Refused with the change named and the way out: timestamps with their offset and
  data.timezone: UTC, where every instant is one distinct time (docs/reliability.md);
- ids that differ only by case or surrounding whitespace (`a`, `A`, `a `): a warning, or a
  refusal with data.ambiguous_ids: refuse;
- rows dated more than one data.frequency step after the clock at ingest (clock skew upstream,
  a swapped day and month): a warning, or a refusal with data.future_timestamps: refuse. Not
  refused by default: synthetic and planned data are dated ahead on purpose, and the forecasts
  are then simply for the steps after the last row.

Each refusal is a DataValidationError of the whole source (exit 2, one message naming the ids),
whatever data.on_bad_series says: these are contradictions between the data and the config,
not one broken series.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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
    """Refuse what no later stage could hold; warn on (or refuse) ambiguous ids and rows dated
    in the future. `frame`: typed by tasks.ingest.read.coerce; a column it could not type (the
    schema's dtype check reports it) is not looked at here."""
    problems = []
    if frame.schema[SERIES_ID] == pl.String:
        problems += unholdable(frame[SERIES_ID], cfg)
        problems += _warn_or_refuse(_ambiguous(frame), cfg.data.ambiguous_ids, "ambiguous_ids")
    if frame.schema[TIMESTAMP] == pl.Datetime("us"):
        problems += _past_calendar(frame, cfg)
        problems += _across_offset_changes(frame, cfg)
        future = _future(frame, cfg)
        problems += _warn_or_refuse(future, cfg.data.future_timestamps, "future_timestamps")
    if problems:
        raise DataValidationError(
            "the source cannot be published as configured; nothing was run:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def _warn_or_refuse(line: str | None, setting: str, key: str) -> list[str]:
    if line is None:
        return []
    if setting == "refuse":
        return [f"{line} (data.{key}: refuse)"]
    log.warning("ingest: %s (data.%s: refuse stops the run instead)", line, key)
    return []


def _future(frame: pl.DataFrame, cfg: Config, now: datetime | None = None) -> str | None:
    """The rows dated more than one data.frequency step after `now` (the clock, in
    data.timezone), described; None when there are none."""
    now = now or datetime.now(UTC).astimezone(ZoneInfo(cfg.data.timezone)).replace(tzinfo=None)
    limit = pl.lit(now).dt.offset_by(cfg.data.frequency)
    late = frame.filter(pl.col(SERIES_ID).is_not_null() & (pl.col(TIMESTAMP) > limit))
    if not late.height:
        return None
    series = late[SERIES_ID].unique(maintain_order=True)
    latest = late.select(pl.col(TIMESTAMP).max().dt.to_string("%Y-%m-%dT%H:%M:%S")).item()
    return (
        f"{late.height} row(s) of {series.len()} series are dated after the clock at ingest "
        f"({now:%Y-%m-%dT%H:%M} in {cfg.data.timezone}, plus one {cfg.data.frequency} step), "
        f"the latest {latest}: a skewed clock upstream or a swapped day and month? Series: "
        + ", ".join(show(s) for s in series.head(LISTED))
        + (", ..." if series.len() > LISTED else "")
    )


def _ambiguous(frame: pl.DataFrame) -> str | None:
    groups = ambiguous(frame[SERIES_ID])
    if not groups:
        return None
    return (
        f"{len(groups)} group(s) of series ids differ only by case or surrounding whitespace, "
        f"each published as separate series: {_groups(groups)}"
    )


def _groups(groups: list[list[str]]) -> str:
    shown = ["{" + ", ".join(show(s) for s in g[:LISTED]) + "}" for g in groups[:LISTED]]
    return ", ".join(shown) + (", ..." if len(groups) > LISTED else "")


def _horizon_offset(cfg: Config) -> str:
    """data.frequency times forecast.horizon as one polars duration ("1mo" x 24 -> "24mo")."""
    count, unit = re.fullmatch(r"(\d+)([a-z]+)", cfg.data.frequency).groups()
    return f"{int(count) * cfg.forecast.horizon}{unit}"


def _past_calendar(frame: pl.DataFrame, cfg: Config) -> list[str]:
    end = pl.col(TIMESTAMP).max().dt.offset_by(_horizon_offset(cfg))
    if not frame.select(end > CALENDAR_END).item():  # the common case: one pass, no group_by
        return []
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


# Units of a fixed step shorter than a day: the ones a change of UTC offset breaks.
_SUB_DAILY = {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6, "m": 6e7, "h": 3.6e9}
_DAY_US = 86_400e6


def _sub_daily(frequency: str) -> bool:
    count, unit = re.fullmatch(r"(\d+)([a-z]+)", frequency).groups()
    return unit in _SUB_DAILY and int(count) * _SUB_DAILY[unit] < _DAY_US


def _offsets(utc: pl.Series, timezone: str) -> pl.DataFrame:
    """naive (the UTC instants without zone) and off (timezone's UTC offset at each)."""
    naive = pl.col("utc").dt.replace_time_zone(None)
    local = pl.col("utc").dt.convert_time_zone(timezone).dt.replace_time_zone(None)
    return pl.DataFrame({"utc": utc}).select(naive=naive, off=local - naive)


def offset_changes(timezone: str, lo: datetime, hi: datetime) -> pl.DataFrame:
    """The changes of `timezone`'s UTC offset between the local times `lo` and `hi`: one row
    each, the local times [a, b) it skips ("does not exist") or repeats ("occurs twice").
    Found day by day (UTC midnights: bounded work whatever the span), then placed to the quarter
    hour within the day (offsets change on a quarter hour)."""
    days = _offsets(
        pl.datetime_range(
            lo - timedelta(days=2), hi + timedelta(days=2), "1d", time_zone="UTC", eager=True
        ),
        timezone,
    )
    changed = days.filter(pl.col("off") != pl.col("off").shift(-1))["naive"]
    quarters = [
        pl.datetime_range(d, d + timedelta(days=1), "15m", time_zone="UTC", eager=True)
        for d in changed.dt.replace_time_zone("UTC")
    ]
    if not quarters:
        return pl.DataFrame(
            schema={"a": pl.Datetime("us"), "b": pl.Datetime("us"), "kind": pl.String}
        )
    return (
        _offsets(pl.concat(quarters), timezone)
        .with_columns(old=pl.col("off").shift(1))
        .filter(pl.col("off") != pl.col("old"))
        .select(
            a=pl.col("naive") + pl.min_horizontal("off", "old"),
            b=pl.col("naive") + pl.max_horizontal("off", "old"),
            kind=pl.when(pl.col("off") > pl.col("old"))
            .then(pl.lit("does not exist"))
            .otherwise(pl.lit("occurs twice")),
        )
    )


def _across_offset_changes(frame: pl.DataFrame, cfg: Config) -> list[str]:
    if cfg.data.timezone == "UTC" or not _sub_daily(cfg.data.frequency):
        return []
    spans = (
        frame.filter(pl.col(SERIES_ID).is_not_null() & pl.col(TIMESTAMP).is_not_null())
        .group_by(SERIES_ID, maintain_order=True)
        .agg(first=pl.col(TIMESTAMP).min(), last=pl.col(TIMESTAMP).max())
    )
    if not spans.height:
        return []
    # Within what Python's datetime holds, two days from its ends (the calendar check above
    # refuses any later time).
    within = pl.col("first").min(), pl.col("last").max()
    lo, hi = spans.select(c.clip(datetime(1, 1, 3), datetime(9999, 12, 29)) for c in within).row(0)
    changes = offset_changes(cfg.data.timezone, lo, hi)
    crossing = spans.join(changes, how="cross").filter(
        (pl.col("first") < pl.col("b")) & (pl.col("last") >= pl.col("a"))
    )
    if not crossing.height:
        return []
    series = crossing[SERIES_ID].unique(maintain_order=True)
    seen = crossing.unique(["a"], maintain_order=True).head(LISTED)
    named = "; ".join(
        f"{r['a']:%Y-%m-%d} {r['a']:%H:%M}-{r['b']:%H:%M} {r['kind']}"
        for r in seen.iter_rows(named=True)
    )
    return [
        f"{series.len()} series of {cfg.data.frequency} data cross a change of UTC offset in "
        f"data.timezone {cfg.data.timezone} (local times {named}), where local time cannot "
        "be a regular grid: an hour that does not exist would be a gap (or filled with an "
        "invented value), an hour that occurs twice two rows with one timestamp. Write the "
        "timestamps with their UTC offset (2024-10-27T02:00:00+01:00) or in UTC, and set "
        "data.timezone: UTC: every instant is then one distinct time (forecasts dated in UTC). "
        f"Series: {', '.join(show(s) for s in series.head(LISTED))}"
        + (", ..." if series.len() > LISTED else "")
    ]

"""Series ids as user data: what the configured publish targets can hold, which ids people
cannot tell apart, and how an id is shown so that they can.

Ingest runs `unholdable` and `ambiguous` before any work (tasks/ingest): an id the system of
record cannot store would otherwise pass every stage and fail at publish, minutes later.

What a target can hold (measured on the targets themselves, tests/tasks/ingest/test_ids.py):
- the SQLite store and the Parquet export: any text polars holds (NUL and any length included);
- a PostgreSQL store (`publish.url`): no NUL (text cannot hold it: psycopg's
  CharacterNotInRepertoire), and an id is part of the unique indexes of the forecasts and the
  monitor's tables, whose btree entries are at most 2704 bytes: an id of 2800 random bytes
  fails the publish. PG_MAX_ID_BYTES leaves room for the run key and timestamp beside it.
A target added under tasks/publishing/targets/ that holds less adds its rule here.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tasks.textfmt import clip

# UTF-8 bytes of a series id a PostgreSQL store takes (btree entry 2704 bytes, less the run key,
# timestamp and tuple overhead beside it, about 80; rounded down).
PG_MAX_ID_BYTES = 2048


@dataclass(frozen=True)
class Rule:
    target: str  # as people know it: "the PostgreSQL store (publish.url)"
    what: str  # what an id breaking it holds: "a NUL character"
    breaks: pl.Expr  # True for the ids it cannot hold (on a column of ids)


def _dialect(url: str) -> str:
    """The backend of a publish.url template ("postgresql+psycopg://..." -> "postgresql")."""
    return url.split(":", 1)[0].split("+", 1)[0].lower()


def rules(cfg) -> list[Rule]:
    """What the targets in cfg.publish.targets cannot hold (none for SQLite and Parquet)."""
    url = cfg.publish.url
    if "sqlite" not in cfg.publish.targets or url is None or _dialect(url) != "postgresql":
        return []
    target = "the PostgreSQL store (publish.url)"
    ids = pl.col("id")
    return [
        Rule(target, "a NUL character (\\x00)", ids.str.contains("\x00", literal=True)),
        Rule(
            target,
            f"more than {PG_MAX_ID_BYTES} bytes (UTF-8)",
            ids.str.len_bytes() > PG_MAX_ID_BYTES,
        ),
    ]


def unholdable(ids: pl.Series, cfg) -> list[str]:
    """One line per rule broken: which target, why, how many ids, the first few (shown)."""
    if not (checks := rules(cfg)):
        return []
    frame = pl.DataFrame({"id": ids.drop_nulls().unique(maintain_order=True).cast(pl.String)})
    lines = []
    for rule in checks:
        bad = frame.filter(rule.breaks)["id"]
        if bad.len():
            lines.append(
                f"{bad.len()} series id(s) hold {rule.what}, which {rule.target} cannot store: "
                + ", ".join(show(s) for s in bad.head(5))
                + (", ..." if bad.len() > 5 else "")
            )
    return lines


def ambiguous(ids: pl.Series) -> list[list[str]]:
    """Groups of ids that differ only by case or surrounding whitespace (`a`, `A`, `a `): each
    a distinct series to the pipeline, one to a person reading a chart or a spreadsheet. Each
    group sorted, the groups in order of their first id."""
    frame = pl.DataFrame({"id": ids.drop_nulls().unique().cast(pl.String)})
    groups = (
        frame.group_by(pl.col("id").str.strip_chars().str.to_lowercase().alias("_norm"))
        .agg(pl.col("id").sort())
        .filter(pl.col("id").list.len() > 1)
        .sort(pl.col("id").list.first())
    )
    return groups["id"].to_list()


def show(series_id: object) -> str:
    """A series id as text people can tell from every other: as it is when that is plain, quoted
    like Python's repr (`'a '`, `'a\\x00b'`, `'\\u200b'`) when whitespace at its ends, a
    character that does not print, or a leading quote would make it look like another id.
    Bounded (tasks.textfmt.clip)."""
    text = str(series_id)
    plain = text.isprintable() and text == text.strip() and not text.startswith(("'", '"'))
    return clip(text if plain and text else repr(text))

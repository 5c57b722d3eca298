"""Series ids and dates a later stage cannot hold, refused at ingest (issue 25.6, 25.7, 25.11):
ids a configured publish target cannot store, a horizon past the calendar, ids that differ only
by case or whitespace; a chart that cannot be drawn never stops a publish; ids shown apart."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

import polars as pl
import pytest
import yaml

from flows.stages import __main__ as stages
from flows.stages.publish import BLANK_PNG, chart_or_blank
from tasks import charts
from tasks.columns import SERIES_ID
from tasks.errors import DataValidationError
from tasks.ingest import read_source, validate
from tasks.publishing.store import publish_forecasts, read_current
from tasks.series_ids import PG_MAX_ID_BYTES, ambiguous, show
from tests.tasks.ingest.test_ingest import _sha256_tree, monthly, small_cfg, stage_dir, write_csv
from tests.tasks.publishing.test_store import _lineage

__all__ = ["stage_dir"]  # the fixture, used by name

PG_URL = "postgresql+psycopg://forecast:${FORECAST_DB_PASSWORD}@db.internal/forecasts"


def _random_text(n_bytes: int, seed: int = 0) -> str:
    """Incompressible ASCII text of `n_bytes` (PostgreSQL compresses repetitive index entries,
    so a run of one letter would pass where real ids do not)."""
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n_bytes))


def _frame(ids: list[str], n: int = 8, start: int = 2000) -> pl.DataFrame:
    rows = [r for sid in ids for r in monthly(sid, n=n, start=start)]
    return pl.DataFrame(rows, schema=[SERIES_ID, "timestamp", "value"], orient="row")


def _ingest(frame: pl.DataFrame, **sections):
    return validate(frame, small_cfg(**sections))


# --------------------------------------------------------------- 25.6: ids the targets cannot hold
UNHOLDABLE = {
    "nul": ("a\x00b", "NUL"),
    "too long": (_random_text(PG_MAX_ID_BYTES + 1), f"more than {PG_MAX_ID_BYTES} bytes"),
    "too long in UTF-8": ("é" * (PG_MAX_ID_BYTES // 2 + 1), f"more than {PG_MAX_ID_BYTES} bytes"),
}


@pytest.mark.parametrize(("sid", "why"), UNHOLDABLE.values(), ids=UNHOLDABLE)
def test_an_id_the_postgresql_store_cannot_hold_stops_the_ingest_stage(stage_dir, capsys, sid, why):
    """With publish.url on PostgreSQL, the ingest stage (the first) exits 2 naming the target,
    the rule and the id, and writes nothing; the same source with the SQLite store ingests."""
    frame = _frame([sid, "b"])
    frame.write_parquet(stage_dir / "raw.parquet")
    params = small_cfg(publish={"url": PG_URL}).model_dump(mode="json")
    params["data"]["path"] = "raw.parquet"
    (stage_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = _sha256_tree(stage_dir)

    assert stages.main(["ingest"]) == 2

    err = capsys.readouterr().err
    assert "PostgreSQL store (publish.url) cannot store" in err
    assert why in err
    assert show(sid)[:40] in err
    assert _sha256_tree(stage_dir) == before
    # The default store (SQLite) and the Parquet export hold it: nothing to refuse.
    assert set(_ingest(frame)[SERIES_ID].unique()) == {sid, "b"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_store_holds_every_id_ingest_lets_through(backend, tmp_path, request):
    """The rules match the stores: every id ingest accepts for a backend is published and read
    back unchanged, and PostgreSQL does fail on the kinds ingest refuses for it (so the refusal
    is needed, and its byte limit is on the safe side of the real one)."""
    store = tmp_path / "s.sqlite" if backend == "sqlite" else request.getfixturevalue("pg_url")
    accepted = [
        _random_text(PG_MAX_ID_BYTES),
        "é" * (PG_MAX_ID_BYTES // 2),
        "a",
        "A",
        "a ",  # three series in both stores (case- and blank-sensitive keys)
        "x\ny",
    ]
    if backend == "sqlite":
        accepted += ["a\x00b", _random_text(20_000)]
    publish_forecasts(_forecasts(accepted), _lineage(), store, tmp_path / "e.parquet")
    assert set(read_current(store)[SERIES_ID]) == set(accepted)
    if backend == "postgresql":
        for refused in ("a\x00b", _random_text(2_800, seed=1)):
            with pytest.raises(Exception, match="0x00|index row"):
                publish_forecasts(
                    _forecasts([refused]), _lineage("n" * 32), store, tmp_path / "e.parquet"
                )


def _forecasts(ids: list[str]) -> pl.DataFrame:
    rows = [(s, datetime(1961, m, 1), m, 1.0) for s in ids for m in (1, 2)]
    schema = {SERIES_ID: pl.String, "timestamp": pl.Datetime("us"), "horizon_step": pl.Int64,
              "forecast": pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


# ------------------------------------------------------------ 25.7: a horizon past the calendar
def test_a_horizon_that_leaves_the_calendar_is_refused_at_ingest(tmp_path):
    """A series ending in 9998-12 with a 24-month horizon would be forecast into the year 10000:
    refused before any work, the series and its last date named. A 12-month horizon ends in
    9999-12 and ingests."""
    rows = [["late", f"{9996 + i // 12}-{i % 12 + 1:02d}-01", str(10.0 + i)] for i in range(36)]
    rows += monthly("early", n=36)
    frame = read_source(write_csv(tmp_path / "s.csv", rows))
    with pytest.raises(DataValidationError, match=r"past 9999-12-31") as info:
        validate(frame, small_cfg(forecast={"horizon": 24}))
    assert "late (last 9998-12-01T00:00:00)" in str(info.value)
    assert "early" not in str(info.value)
    assert validate(frame, small_cfg(forecast={"horizon": 12}))[SERIES_ID].n_unique() == 2


def test_a_chart_that_cannot_be_drawn_publishes_a_blank_image_with_a_warning(caplog):
    """The publish stage draws its chart through chart_or_blank: a real chart failure (forecasts
    dated in the year 10000, which matplotlib's dates cannot hold) is a warning and a blank image,
    never a failed publish."""
    history = pl.DataFrame(
        {
            SERIES_ID: ["s"] * 3,
            "timestamp": [datetime(9999, m, 1) for m in (1, 2, 3)],
            "value": [1.0, 2.0, 3.0],
        }  # fmt: skip
    )
    forecast = pl.DataFrame(
        {SERIES_ID: ["s"], "timestamp": [datetime(9999, 12, 1)], "forecast": [4.0]}
    ).with_columns(pl.col("timestamp").dt.offset_by("1mo"))  # 10000-01-01

    def draw() -> bytes:
        return charts.forecast_chart(history, forecast, ["s"], "t")

    with pytest.raises(Exception, match="year 10000|out of range"):
        draw()  # the failure is real
    with caplog.at_level(logging.WARNING, logger="forecast"):
        png = chart_or_blank(draw)
    assert png == BLANK_PNG and png.startswith(b"\x89PNG")
    assert "forecast chart could not be drawn" in caplog.text
    assert "publishing without it" in caplog.text


# -------------------------------------------------- 25.11: ids that differ by case or whitespace
AMBIGUOUS = ["a", "A", "a ", "b"]


def test_ids_differing_only_by_case_or_whitespace_warn_by_default(caplog):
    with caplog.at_level(logging.WARNING, logger="forecast"):
        out = _ingest(_frame(AMBIGUOUS))
    assert set(out[SERIES_ID]) == set(AMBIGUOUS)  # still separate series
    assert "differ only by case or surrounding whitespace" in caplog.text
    assert "{A, a, 'a '}" in caplog.text  # the trailing space shown
    assert "1 group(s)" in caplog.text  # `b` is in none


def test_ids_differing_only_by_case_or_whitespace_refused_by_the_setting():
    with pytest.raises(DataValidationError, match=r"\{A, a, 'a '\}.*ambiguous_ids: refuse"):
        _ingest(_frame(AMBIGUOUS), data={"ambiguous_ids": "refuse"})
    assert set(_ingest(_frame(["a", "b"]), data={"ambiguous_ids": "refuse"})[SERIES_ID]) == {
        "a",
        "b",
    }


def test_ambiguous_groups():
    ids = pl.Series(["x", " b", "a", "B", "A", "c", "b\t"])
    assert ambiguous(ids) == [[" b", "B", "b\t"], ["A", "a"]]


@pytest.mark.parametrize(
    ("sid", "shown"),
    [
        ("a", "a"),
        ("a b", "a b"),
        ("Zürich-1", "Zürich-1"),
        ("a ", "'a '"),
        (" a", "' a'"),
        ("a\x00b", "'a\\x00b'"),
        ("\u200b", "'\\u200b'"),
        ("", "''"),
        ("'a '", "\"'a '\""),  # a quoted-looking id is quoted itself: never shown as `a `'s form
    ],
)
def test_ids_are_shown_apart(sid, shown):
    assert show(sid) == shown


def test_the_forecast_chart_titles_ids_apart():
    """The chart (the DVC image plot and the Prefect UI's) titles each panel with show(): `a`
    and `a ` were both titled `a`."""
    ids = ["a", "a "]
    history = pl.DataFrame(
        {
            SERIES_ID: ids * 2,
            "timestamp": [datetime(2000, 1, 1)] * 2 + [datetime(2000, 2, 1)] * 2,
            "value": [1.0, 2.0, 3.0, 4.0],
        }  # fmt: skip
    )
    forecast = pl.DataFrame(
        {SERIES_ID: ids, "timestamp": [datetime(2000, 3, 1)] * 2, "forecast": [5.0, 6.0]}
    )
    svg = charts.forecast_chart(history, forecast, ids, "t", fmt="svg").decode()
    assert charts.label("a ") == "'a '" != charts.label("a")
    assert "'a '" in svg or "&#39;a &#39;" in svg


def test_the_prefect_artifacts_list_ids_apart(tmp_path):
    """The Prefect UI's chart lists `a` and `a ` as `a`, `'a '` (it showed `a` twice), and the
    published-forecasts table likewise."""
    from flows import artifacts

    text = artifacts.chart_markdown(BLANK_PNG, ["a", "a "], "t")
    assert "`a`, `'a '`" in text
    export = tmp_path / "forecasts.parquet"
    _forecasts(["a", "a "]).with_columns(
        model_version=pl.lit("v"), published_at=pl.lit("p")
    ).write_parquet(export)
    assert {r[SERIES_ID] for r in artifacts.forecast_rows(export)} == {"a", "'a '"}


# ------------------------------------------------ 25.9, 25.10: sub-daily data across a DST change
def _hourly(start: datetime, n: int, offset: bool) -> list[list]:
    """Rows of one hourly series from the UTC instant `start`: Berlin local times, with their
    offset (+01:00/+02:00) or naive."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    rows = []
    for i in range(n):
        local = (
            (start + timedelta(hours=i)).replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
        )
        text = local.isoformat() if offset else local.replace(tzinfo=None).isoformat()
        rows.append(["s", text, str(10.0 + i % 5)])
    return rows


def test_hourly_data_with_offsets_across_the_autumn_change_is_refused_in_local_time(tmp_path):
    """25.9: 02:00+02:00 and 02:00+01:00 are two instants; in Europe/Berlin local time they are
    one. Refused naming the change and the way out (it was a duplicate-key report); with
    data.timezone UTC the same file ingests, one row per instant."""
    rows = _hourly(datetime(2024, 10, 26, 20), 12, offset=True)
    assert [r[1][11:] for r in rows[3:6]] == ["01:00:00+02:00", "02:00:00+02:00", "02:00:00+01:00"]
    path = write_csv(tmp_path / "s.csv", rows)
    cfg = small_cfg(data={"frequency": "1h", "timezone": "Europe/Berlin"})
    with pytest.raises(DataValidationError) as info:
        validate(read_source(path, timezone="Europe/Berlin"), cfg)
    text = str(info.value)
    assert "2024-10-27 02:00-03:00 occurs twice" in text
    assert "data.timezone: UTC" in text and "unique" not in text
    utc = validate(read_source(path), small_cfg(data={"frequency": "1h"}))
    assert utc.height == 12 and utc["timestamp"].n_unique() == 12
    assert not utc["filled"].any()


def test_naive_local_times_across_the_spring_change_are_never_filled(tmp_path):
    """25.10: naive Berlin times jump from 01:00 to 03:00 on 2024-03-31; 02:00 does not exist
    there. With fill_gaps: interpolate it was invented; now the run is refused, naming it."""
    rows = _hourly(datetime(2024, 3, 30, 20), 12, offset=False)
    assert [r[1][11:16] for r in rows[4:7]] == ["01:00", "03:00", "04:00"]
    path = write_csv(tmp_path / "s.csv", rows)
    cfg = small_cfg(
        data={
            "frequency": "1h",
            "timezone": "Europe/Berlin",
            "fill_gaps": "interpolate",
            "max_fill_fraction": 0.5,
        }  # fmt: skip
    )
    with pytest.raises(DataValidationError, match="2024-03-31 02:00-03:00 does not exist"):
        validate(read_source(path, timezone="Europe/Berlin"), cfg)


def test_sub_daily_data_clear_of_a_change_and_daily_data_across_one_ingest(tmp_path):
    summer = write_csv(tmp_path / "h.csv", _hourly(datetime(2024, 7, 1), 12, offset=False))
    hourly = small_cfg(data={"frequency": "1h", "timezone": "Europe/Berlin"})
    assert validate(read_source(summer, timezone="Europe/Berlin"), hourly).height == 12
    days = [["s", f"2024-10-{d:02d}", str(float(d))] for d in range(20, 31)]
    daily = small_cfg(data={"frequency": "1d", "timezone": "Europe/Berlin"})
    path = write_csv(tmp_path / "d.csv", days)
    assert validate(read_source(path, timezone="Europe/Berlin"), daily).height == 11


# --------------------------------------------------- clock skew: a data point dated in the future
def _with_future_point(tmp_path) -> pl.DataFrame:
    """A monthly series through last month and another whose last row is dated 2999-01-01."""
    today = datetime.now()
    months = [(today.year * 12 + today.month - 1 - k) for k in range(8, 0, -1)]
    rows = [["now", f"{m // 12}-{m % 12 + 1:02d}-01", str(10.0 + i)] for i, m in enumerate(months)]
    rows += monthly("skewed", n=7) + [["skewed", "2999-01-01", "99"]]
    return read_source(write_csv(tmp_path / "s.csv", rows))


def test_a_row_dated_in_the_future_warns_by_default_and_is_refused_by_the_setting(tmp_path, caplog):
    """Decided behaviour: a row dated more than one step after the clock at ingest is named in a
    warning (synthetic or planned data is dated ahead on purpose); data.future_timestamps:
    refuse stops the run before any work. A series up to the current month is not named."""
    frame = _with_future_point(tmp_path)
    with caplog.at_level(logging.WARNING, logger="forecast"):
        validate(frame, small_cfg(data={"max_bad_series_fraction": 1.0}))
    assert "1 row(s) of 1 series are dated after the clock at ingest" in caplog.text
    assert "the latest 2999-01-01T00:00:00" in caplog.text and "Series: skewed" in caplog.text
    with pytest.raises(DataValidationError, match=r"Series: skewed \(data.future_timestamps"):
        validate(frame, small_cfg(data={"future_timestamps": "refuse"}))

"""The store's database URL (tasks/publishing/db.py, tasks/config/sections.py): no literal
password anywhere in it, a password from the environment used as it is whatever its characters,
every shown form masked from the parsed URL, and an unreachable store refused before any work."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tasks.config import PublishConfig
from tasks.publishing.db import Database, StoreURLError, check_reachable, mask

# A password that breaks naive string substitution into a URL (reliability round 3, point 2).
NASTY = "s3cr@t/pa:ss?#%"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u@db.internal/forecasts?password=hunter2",
        "postgresql+psycopg://u@db.internal/forecasts?sslmode=require&PassWord=hunter2",
        "postgresql+psycopg://u@db.internal/forecasts?sslpassword=hunter2",
        "postgresql+psycopg://u:hunter2@db.internal/forecasts",
    ],
)
def test_a_literal_password_anywhere_in_the_url_is_refused(url):
    with pytest.raises(ValueError, match="holds a password: put it in an environment variable"):
        PublishConfig(url=url)
    with pytest.raises(ValueError, match="holds a password"):
        Database.from_url(url)  # the library refuses it too (it would travel in the journal)


def test_a_password_from_the_environment_is_accepted_in_the_query_too():
    url = "postgresql+psycopg://u@db.internal/forecasts?password=${FORECAST_DB_PASSWORD}"
    assert PublishConfig(url=url).url == url


def test_every_shown_form_masks_the_password_from_the_parsed_url(monkeypatch):
    monkeypatch.setenv("FORECAST_DB_PASSWORD", NASTY)
    db = Database.from_url(
        "postgresql+psycopg://forecast:${FORECAST_DB_PASSWORD}@db.internal:5432/f"
    )
    assert db.url.password == NASTY and db.url.host == "db.internal" and db.url.database == "f"
    assert db.masked == "postgresql+psycopg://forecast:***@db.internal:5432/f"
    in_query = mask(f"postgresql+psycopg://u@h/db?password={NASTY.replace('#', '')}&sslmode=a")
    assert "s3cr" not in in_query and "pa" not in in_query.split("?")[1].split("&")[0][9:]
    assert in_query.endswith("?password=***&sslmode=a")


def test_a_password_with_url_characters_connects_through_the_environment(pg_server, monkeypatch):
    admin = sa.create_engine(pg_server.url(masked_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS nasty")
        # psycopg reads % as a placeholder in a statement: doubled, it is the character.
        escaped = NASTY.replace("%", "%%")
        conn.exec_driver_sql(f"CREATE ROLE nasty LOGIN PASSWORD '{escaped}'")
    admin.dispose()
    monkeypatch.setenv("FORECAST_NASTY_PASSWORD", NASTY)
    template = f"postgresql+psycopg://nasty:${{FORECAST_NASTY_PASSWORD}}@127.0.0.1:{pg_server.port}/postgres"
    check_reachable(Database.from_url(template))  # no error: the password is the password

    monkeypatch.setenv("FORECAST_NASTY_PASSWORD", NASTY + "wrong")
    with pytest.raises(StoreURLError, match="cannot reach the forecast store") as err:
        check_reachable(Database.from_url(template))
    assert "s3cr" not in str(err.value) and "nasty:***@127.0.0.1" in str(err.value)


def test_an_unreachable_store_is_refused_with_one_line_naming_it(monkeypatch):
    monkeypatch.setenv("FORECAST_DB_PASSWORD", "x")
    db = Database.from_url("postgresql+psycopg://u:${FORECAST_DB_PASSWORD}@127.0.0.1:1/forecasts")
    with pytest.raises(
        StoreURLError,
        match=r"cannot reach the forecast store postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/forecasts",
    ):
        check_reachable(db)

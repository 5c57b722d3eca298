"""Where the forecast store lives: a database URL (SQLAlchemy), and how to reach it safely.

`publish.url` in params.yaml names the database; unset (the default) it is the embedded SQLite
file `publish.store`, so the quick start needs no server. The URL may name environment variables
as `${VAR}`, expanded when the store is opened and never written back anywhere:

    publish:
      url: postgresql+psycopg://forecast:${FORECAST_DB_PASSWORD}@db.internal:5432/forecasts

A URL holding a literal password is refused by the config (credentials never in params.yaml);
every URL that reaches a log, an artifact, a journal or a summary is the masked one (`masked`)
or the unexpanded template.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

from tasks.config import ENV_VAR as _VAR
from tasks.config import check_url_template
from tasks.config.sections import PASSWORD_KEYS
from tasks.errors import PipelineError

# One constant for every publisher of one PostgreSQL store: pg_advisory_xact_lock serialises
# them across machines the way the directory lock does on one machine.
PG_LOCK_KEY = 0x46_43_53_54  # "FCST"
# SQLite: how long a reader or writer waits for the other's lock before failing.
SQLITE_TIMEOUT_S = 60.0


class StoreURLError(PipelineError):
    """publish.url cannot be used: a variable is not set, or the URL is malformed."""


class NoStore(FileNotFoundError):
    """Nothing was ever published to this store."""


def placeholders(template: str) -> list[str]:
    return _VAR.findall(template)


def expand(template: str) -> URL:
    """The URL with each `${VAR}` replaced by the environment's value, as a field of the parsed
    URL (`URL.create` takes fields as they are): a password holding `@`, `/` or `:` is the
    password, not a broken URL. A variable not set stops with its name."""
    missing = [v for v in placeholders(template) if v not in os.environ]
    if missing:
        raise StoreURLError(
            f"publish.url names environment variable(s) {', '.join(missing)}, not set: "
            "export them before running (credentials never go in params.yaml)"
        )
    if _VAR.fullmatch(template):  # the whole URL from the environment, written as a URL
        return make_url(os.environ[_VAR.fullmatch(template).group(1)])
    # Each variable becomes a token no URL part can hold otherwise, parsed, then filled per field.
    tokens: dict[str, str] = {}

    def token(match) -> str:
        tokens[f"forecastvar{len(tokens)}x"] = os.environ[match.group(1)]
        return f"forecastvar{len(tokens) - 1}x"

    url = make_url(_VAR.sub(token, template))

    def fill(text):
        if text is None:
            return None
        if not isinstance(text, str):
            return tuple(fill(t) for t in text)
        for key, value in tokens.items():
            text = text.replace(key, value)
        return text

    return URL.create(
        url.drivername,
        username=fill(url.username),
        password=fill(None if url.password is None else str(url.password)),
        host=fill(url.host),
        port=url.port,
        database=fill(url.database),
        query={k: fill(v) for k, v in url.query.items()},
    )


def mask(url: str | URL) -> str:
    """The URL with its password, and any password in its query, replaced by ***: the only form
    that may be logged. Masked from the parsed URL, so no part of a password leaks whatever
    characters it holds."""
    try:
        url = make_url(url)
        query = {k: ("***" if k.lower() in PASSWORD_KEYS else v) for k, v in url.query.items()}
        rendered = url.set(query=query).render_as_string(hide_password=True)
        return rendered.replace("%2A%2A%2A", "***")
    except Exception:  # not a URL at all: show nothing of it
        return "<unparseable database URL>"


@dataclass(frozen=True)
class Database:
    """A forecast store: a SQLite file (`file`) or a server (`template`, a URL that may hold
    ${VAR})."""

    template: str
    file: Path | None = None

    @classmethod
    def sqlite_file(cls, path: str | Path) -> Database:
        path = Path(path)
        return cls(template=f"sqlite:///{path}", file=path)

    @classmethod
    def from_url(cls, template: str) -> Database:
        # The template travels (publish journal): never with a literal password in it.
        check_url_template(template)
        if "${" not in template:
            url = make_url(template)
            if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
                return cls(template=template, file=Path(url.database))
        return cls(template=template)

    @property
    def is_file(self) -> bool:
        return self.file is not None

    @cached_property
    def url(self) -> URL:
        try:
            return expand(self.template)
        except StoreURLError:
            raise
        except Exception as err:
            raise StoreURLError(f"publish.url is not a database URL: {err}") from None

    @property
    def masked(self) -> str:
        """What logs, summaries and artifacts show: the file path, or the URL without password."""
        return str(self.file) if self.file is not None else mask(self.url)

    def engine(self, write: bool = True) -> Engine:
        """A new engine without a pool (NullPool): a SQLite file may be replaced by a restore
        between two calls, and a killed process must not leave pooled connections behind."""
        if self.file is None:
            return sa.create_engine(self.url, poolclass=NullPool)
        if write:
            url = f"sqlite:///{self.file}"
        else:
            if not self.file.is_file():
                # sqlite would create an empty database here: say what is missing instead.
                raise NoStore(f"no forecast store at {self.file} (nothing published yet?)")
            url = f"sqlite:///file:{self.file.resolve()}?mode=ro&uri=true"
        engine = sa.create_engine(
            url, poolclass=NullPool, connect_args={"timeout": SQLITE_TIMEOUT_S}
        )
        _sqlite_transactions(engine, "BEGIN IMMEDIATE" if write else "BEGIN")
        return engine


def _sqlite_transactions(engine: Engine, begin: str) -> None:
    """pysqlite's own transaction handling begins late and commits behind SQLAlchemy's back:
    turn it off and begin explicitly (SQLAlchemy's documented recipe). A writer begins
    IMMEDIATE: it holds the write lock from the start, so two publishers serialise."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None
        if begin != "BEGIN":
            # DELETE journal: no -wal/-shm files beside the store, none left after commit.
            dbapi_conn.execute("PRAGMA journal_mode=DELETE")
            dbapi_conn.execute("PRAGMA synchronous=FULL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        conn.exec_driver_sql(begin)


def check_reachable(db: Database) -> None:
    """Connect once, so a wrong host, database or password stops a run before any stage works
    (it used to surface at publish, after training). The message names the masked URL and never
    the password, whatever the driver put in its error."""
    if db.is_file:
        return
    url = db.url
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as err:  # noqa: BLE001 - any driver error: one line, masked
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if url.password:
            first = first.replace(str(url.password), "***")
        raise StoreURLError(f"cannot reach the forecast store {db.masked}: {first}") from None
    finally:
        engine.dispose()


def locate(store: str | Path | Database) -> Database:
    """A Database from what callers pass: a Database, a URL ("scheme://..."), or a file path."""
    if isinstance(store, Database):
        return store
    if isinstance(store, str) and "://" in store:
        return Database.from_url(store)
    return Database.sqlite_file(store)


def from_config(cfg) -> Database:
    """The store params.yaml names: `publish.url`, else the SQLite file `publish.store`."""
    if cfg.publish.url:
        return Database.from_url(cfg.publish.url)
    return Database.sqlite_file(cfg.publish.store)


def holds_publish(marker: Mapping) -> bool:
    """Did the database COMMIT the publish a journal names (its run with its sequence number)?
    Opened for writing: SQLite rolls back a transaction a killed writer left first."""
    file = marker.get("file")
    db = Database(template=marker["url"], file=Path(file) if file else None)
    if db.is_file and not db.file.is_file():
        return False
    engine = db.engine()
    try:
        with engine.connect() as conn, conn.begin():
            if not sa.inspect(conn).has_table("runs"):
                return False
            sql = sa.text("SELECT COUNT(*) FROM runs WHERE run_key = :k AND publish_seq = :s")
            found = conn.execute(sql, {"k": marker["run_key"], "s": marker["publish_seq"]})
            return found.scalar() > 0
    finally:
        engine.dispose()

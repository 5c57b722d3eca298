"""PostgreSQL stopped mid-publish (issue 25, untried case): the server of the store crashes
(`pg_ctl stop -m immediate`, what a power cut or OOM kill of the server leaves) before the
publish's COMMIT. A private server, so the
session's (`pg_server`) is never stopped."""

from __future__ import annotations

import pytest

from tasks.publishing import transaction
from tasks.publishing.transaction import PublishWriteError, recover
from tests.pgserver import PASSWORD_VAR, PostgresServer
from tests.tasks.publishing.test_store import (
    NEW_MODEL,
    _journal,
    _publish_all,
    _same,
    _snapshot,
)


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    data = str(server.root / "data")
    server._run([str(server.bin / "pg_ctl"), "-D", data, *args])


@pytest.fixture
def own_server(monkeypatch):
    monkeypatch.setenv(PASSWORD_VAR, "")  # the session server's value comes back afterwards
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("point", ["publish.staged.forecasts.parquet", "publish.journal"])
def test_postgresql_stopped_mid_publish_publishes_nothing_and_is_resolved_later(
    own_server: PostgresServer, tmp_path, monkeypatch, point
):
    """Stopped with the rows written in the open transaction (the export's temp just
    written), or at the commit point. The publish ends with one error that says the outcome is
    not known yet and where it will be resolved; the published files are as they were; once the
    server is back, recovery asks it, finds no COMMIT, discards the journal and temps; the store
    holds the old run only; the same publish then goes through."""
    url = own_server.create_database("stopped")
    paths = (url, tmp_path / "published" / "forecasts.parquet")
    _publish_all(paths, b"old", "old", 0.0, "m" * 32)
    before = _snapshot(paths)
    files_before = {p.name: p.read_bytes() for p in paths[1].parent.iterdir()}
    stopped = []

    def crash_the_server(name: str) -> None:
        if name == point:
            _pg_ctl(own_server, "-m", "immediate", "-w", "stop")
            stopped.append(name)

    monkeypatch.setattr(transaction, "fault_point", crash_the_server)
    with pytest.raises(PublishWriteError) as err:
        _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert stopped == [point]
    message = str(err.value)
    assert "cannot tell whether postgresql+psycopg://forecast:***@" in message
    assert f"resolves it from {_journal(paths)}" in message
    assert own_server.password not in message
    # Every published file as it was; the journal (and the temps it owns) wait for recovery.
    kept = {p.name: p.read_bytes() for p in paths[1].parent.iterdir()}
    assert {n: b for n, b in kept.items() if n in files_before} == files_before
    assert _journal(paths).exists()

    monkeypatch.undo()  # the real fault points again
    monkeypatch.setenv(PASSWORD_VAR, own_server.password)
    _pg_ctl(own_server, "-l", str(own_server.root / "server.log"), "-o",
            f"-p {own_server.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={own_server.root}", "-w", "-t", "60", "start")  # fmt: skip
    assert recover(_journal(paths)) == []  # no COMMIT landed: discarded
    assert not _journal(paths).exists()
    assert _same(_snapshot(paths), before)  # no temp left, the store holds the old run only
    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert not _same(_snapshot(paths), before)


def test_sigkill_inside_the_commit_window_leaves_all_old_or_all_new(pg_url, tmp_path):
    """A SIGKILL while PostgreSQL executes the publish's COMMIT (sent, not yet answered): the
    random kills never landed there, so the window is widened with a real deferred constraint
    trigger that sleeps at COMMIT. The publisher dies not knowing the outcome; the journal
    holds it; recovery asks the database: the COMMIT landed (a server finishes a COMMIT whose
    client is gone), so every file is renamed forward: the store, export and champion all of
    the new run."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import sqlalchemy as sa

    from tasks.publishing.db import locate
    from tests.tasks.publishing.test_store import KILLED_PUBLISH, _is_new
    from tests.waits import HANG_S

    export = tmp_path / "published" / "forecasts.parquet"
    paths = (pg_url, export)
    _publish_all(paths, b"old", "old", 0.0, "m" * 32)
    engine = locate(pg_url).engine()
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$"
            )
            conn.exec_driver_sql(
                "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON runs "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
            )
        script = KILLED_PUBLISH.format(
            root=str(Path(__file__).resolve().parents[3]), store=pg_url, export=str(export)
        )
        proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
        in_commit = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query ILIKE 'COMMIT%' AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + HANG_S
        with engine.connect() as conn:
            while not conn.execute(in_commit).scalar():
                assert proc.poll() is None, "the publish ended before its COMMIT was seen"
                assert time.monotonic() < deadline, "no COMMIT seen"
                time.sleep(0.02)
                conn.rollback()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=HANG_S) == -signal.SIGKILL
        with engine.connect() as conn:  # the server finishes the COMMIT on its own
            while conn.execute(in_commit).scalar():
                assert time.monotonic() < deadline, "the COMMIT never ended"
                time.sleep(0.05)
                conn.rollback()
    finally:
        engine.dispose()
    assert _journal(paths).exists()  # the publisher died past its journal, before any rename
    assert recover(_journal(paths))  # the database says committed: rolled forward
    assert not _journal(paths).exists()
    assert _is_new(paths)

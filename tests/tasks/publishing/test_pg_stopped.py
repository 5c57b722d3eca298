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

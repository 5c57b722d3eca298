"""A real, throw-away PostgreSQL server on a free loopback port (tests and benchmarks).

Debian's postgresql package puts its server binaries in /usr/lib/postgresql/<major>/bin; initdb
refuses to run as root, so as root the cluster is made and run as the `postgres` user in a
temporary directory it owns. Password authentication (scram) on 127.0.0.1 only: the URL
names the password as ${PGSERVER_PASSWORD_VAR}, set in this process's environment, the way a
production `publish.url` would.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.waits import HANG_S

PASSWORD_VAR = "FORECAST_TEST_PG_PASSWORD"
USER = "forecast"
START_ATTEMPTS = 5


class NoPostgres(RuntimeError):
    pass


def binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise NoPostgres(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
            "`./run.sh test` installs the `postgresql` package when run as root; else "
            "`apt-get install postgresql`"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bin = binaries()
        self.root = Path(tempfile.mkdtemp(prefix="forecast-pg-"))
        self.password = secrets.token_hex(12)
        self.port = 0
        as_root = os.geteuid() == 0
        # Run as postgres when root (initdb refuses root), else as ourselves.
        self.prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        self._run(
            [str(self.bin / "initdb"), "-D", str(self.root / "data"), "-U", USER,
             "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8"]
        )  # fmt: skip
        pwfile.unlink()
        os.environ[PASSWORD_VAR] = self.password

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.prefix, *cmd], capture_output=True, text=True, timeout=HANG_S)
        if check and proc.returncode != 0:
            raise NoPostgres(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def start(self) -> PostgresServer:
        log = self.root / "server.log"
        for _ in range(START_ATTEMPTS):  # the free port may be taken before the server binds it
            self.port = _free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.root} -c max_connections=50"
            )
            done = self._run(
                [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(log),
                 "-o", options, "-w", "-t", str(HANG_S), "start"],
                check=False,
            )  # fmt: skip
            if done.returncode == 0:
                return self
            if "already in use" not in log.read_text():
                raise NoPostgres(f"PostgreSQL did not start:\n{done.stdout}{log.read_text()}")
            time.sleep(0.2)
        raise NoPostgres(f"PostgreSQL: every port tried was taken ({START_ATTEMPTS} tries)")

    def url(self, database: str = "postgres", masked_password: bool = True) -> str:
        """The URL template (password as ${VAR}) of a database on this server."""
        password = f"${{{PASSWORD_VAR}}}" if masked_password else self.password
        return f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL template."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(masked_password=False), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        self._run(
            [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"],
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

"""The temporary Prefect server's start-up wait (flows/ephemeral.py): it waits while the server
works, however long, and gives up only on a server that stopped working or exited. Real processes
stand in for a slow and a stuck server; no timing is asserted."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from flows.ephemeral import ServerStartError, _free_port, _stop, wait_until_healthy

# Busy for `cpu_s` seconds of CPU (a server importing on a loaded machine), then healthy.
SLOW_SERVER = textwrap.dedent(
    """
    import http.server, sys, time
    end = time.process_time() + float(sys.argv[2])
    while time.process_time() < end:
        pass
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"true")
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
    """
)


def _start(code: str, *args: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", code, str(port), *args])
    return proc, f"http://127.0.0.1:{port}/api"


def test_a_server_slower_than_the_stall_limit_but_working_is_waited_for():
    # Old behaviour: a fixed deadline (Prefect's 20 s) ends the wait of a slow start. Here the
    # stall limit is shorter than the start, and the wait goes on because the server works.
    proc, url = _start(SLOW_SERVER, "3")
    said: list[str] = []
    try:
        assert wait_until_healthy(proc, url, stall_s=1.0, say_every_s=0.5, say=said.append)
    finally:
        _stop(proc)
    assert said and all("still starting the local Prefect server" in s for s in said)


def test_a_stuck_server_is_given_up_with_a_message_that_says_what_to_do():
    proc, url = _start("import time; time.sleep(120)")
    try:
        with pytest.raises(ServerStartError, match="used no CPU for 1 s") as err:
            wait_until_healthy(proc, url, stall_s=1.0, say=lambda s: None)
    finally:
        _stop(proc)
    assert "PREFECT_API_URL" in str(err.value)


def test_a_server_that_exits_is_reported_for_a_retry_on_another_port():
    proc, url = _start("raise SystemExit(1)")
    assert wait_until_healthy(proc, url, stall_s=30.0, say=lambda s: None) is False

"""A temporary Prefect server that cannot outlive the command that started it.

Without PREFECT_API_URL, Prefect starts a temporary server itself (`SubprocessASGIServer`: a
`python -m uvicorn ... prefect.server.api.server:create_app` child) and stops it from an atexit
hook. A SIGKILLed command runs no atexit hook, so that server was orphaned, holding its port and
database. Here the command starts the same server itself, with the kernel told to SIGKILL it
when its parent dies (Linux PR_SET_PDEATHSIG; elsewhere only the atexit stop remains), and
points Prefect at it, so Prefect starts none of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
STARTUP_TIMEOUT_S = 120.0


def _die_with(parent: int):
    def preexec() -> None:  # runs in the child, between fork and exec
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_server() -> str:
    """Start the temporary server (as Prefect would) tied to this process; returns its API URL."""
    import prefect
    from prefect.settings import get_current_settings

    for _ in range(5):  # the port may be taken between choosing and binding it
        port = _free_port()
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "error", "--lifespan", "on"],
            env=env, preexec_fn=_die_with(os.getpid()),
        )  # fmt: skip
        # Registered now, before Prefect's own log/event workers register theirs: atexit runs
        # hooks in reverse, so they flush to the server before it stops.
        atexit.register(_stop, proc)
        url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/health", timeout=2) as resp,
            ):
                if resp.status == 200:
                    return url
            time.sleep(0.2)
        _stop(proc)
    raise RuntimeError(f"the temporary Prefect server did not start within {STARTUP_TIMEOUT_S} s")


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Use the configured Prefect API, or a temporary server that dies with this process."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    url = start_server()
    os.environ["PREFECT_API_URL"] = url  # threads and children that read the environment
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield

"""A temporary Prefect server that cannot outlive the command that started it.

Without PREFECT_API_URL, Prefect starts a temporary server itself (`SubprocessASGIServer`: a
`python -m uvicorn ... prefect.server.api.server:create_app` child) and stops it from an atexit
hook. A SIGKILLed command runs no atexit hook, so that server was orphaned, holding its port and
database. Here the command starts the same server itself, with the kernel told to SIGKILL it
when its parent dies (Linux PR_SET_PDEATHSIG; elsewhere only the atexit stop remains), and
points Prefect at it, so Prefect starts none of its own.

Start-up is waited for while the server is alive and working, not for a fixed time: on a busy
machine it took 61-150 s (Prefect's own default gives up after 20 s, which failed the quick start
in 2 of 4 runs). The wait ends when /health answers, when the process exits (a port taken: another
try), when its CPU time has not grown for `STALL_S` (stuck, not slow), or at the hang guard
`CAP_S`; the terminal says what it waits for every `SAY_EVERY_S`.
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

from tasks.errors import PipelineError

PR_SET_PDEATHSIG = 1
STALL_S = 60.0  # no CPU progress for this long: the server is stuck
CAP_S = 900.0  # a hang guard, far past the slowest start seen (150 s under load)
SAY_EVERY_S = 10.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class ServerStartError(PipelineError):
    """The temporary Prefect server stopped making progress before it answered."""


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used, or None when it is gone (Linux /proc)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def wait_until_healthy(
    proc: subprocess.Popen,
    url: str,
    stall_s: float = STALL_S,
    cap_s: float = CAP_S,
    say_every_s: float = SAY_EVERY_S,
    say=_say,
) -> bool:
    """True once `url` answers /health; False when `proc` exited first (the caller may retry on
    another port); ServerStartError when it stalls or passes the hang guard."""
    start = last_progress = time.monotonic()
    last_cpu = cpu_seconds(proc.pid) or 0.0
    next_say = start + say_every_s
    while True:
        if _healthy(url):
            return True
        if proc.poll() is not None:
            return False
        now = time.monotonic()
        cpu = cpu_seconds(proc.pid)
        if cpu is not None and cpu > last_cpu:
            last_cpu, last_progress = cpu, now
        if now - last_progress > stall_s:
            raise ServerStartError(
                f"the temporary Prefect server (pid {proc.pid}) used no CPU for {stall_s:g} s "
                f"and never answered {url}/health: it is stuck. Run again, or start a server "
                "yourself (`prefect server start`) and set PREFECT_API_URL to its API"
            )
        if now - start > cap_s:
            raise ServerStartError(
                f"the temporary Prefect server did not answer within {cap_s:g} s although it "
                "kept working; start one yourself and set PREFECT_API_URL"
            )
        if now >= next_say:
            say(
                f"still starting the local Prefect server ({now - start:.0f} s, "
                f"{last_cpu:.0f} s of CPU so far); waiting while it works"
            )
            next_say = now + say_every_s
        time.sleep(0.2)


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

    _say("starting a local Prefect server for this run (no PREFECT_API_URL set)")
    for _ in range(5):  # the port may be taken between choosing and binding it
        port = _free_port()
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            # No telemetry from a throw-away server (on a machine without internet it logged an
            # ERROR line to the terminal).
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
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
        try:
            if wait_until_healthy(proc, url):
                return url
        except ServerStartError:
            _stop(proc)
            raise
        _stop(proc)
    raise ServerStartError("the temporary Prefect server exited at start on 5 ports in a row")


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

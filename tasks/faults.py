"""Fault injection for tests: a real SIGKILL at a named point of the code.

    FORECAST_KILL_AT=<point> [FORECAST_KILL_MARKER=<file>] python -m flows.pipeline

`fault_point(name)` does nothing unless the environment variable FORECAST_KILL_AT equals `name`.
When it does, it writes FORECAST_KILL_MARKER (if set: the point's name and this process's pid,
so a test knows where and which process died) and sends SIGKILL to its own process. That is a
real kill, not an exception: no `finally`, no atexit, no flush runs, exactly as when the machine
or the OOM killer stops the process there.

Named points (grep `fault_point(` for the list):
  train.<member>.epoch_end.<n>   tasks/model/train.py, when epoch n (1-based) of member `<member>`
                                 (member_0, member_1, ...) has ended, before its resume backup is
                                 written (the backup then holds epoch n - 1)
  publish.staged.<file>          tasks/publishing/transaction.py, after the temp file of <file>
  (e.g.
                                 forecasts.sqlite, forecasts.parquet, champion.keras,
                                 champion.json, publish.json) is written; nothing renamed yet
  publish.journal                once the publish's journal is written (its commit point)
  publish.renamed.<file>         after <file>'s temp is renamed over it (the next one is not)
"""

from __future__ import annotations

import os
import signal

KILL_AT = "FORECAST_KILL_AT"
MARKER = "FORECAST_KILL_MARKER"


def fault_point(name: str) -> None:
    """SIGKILL this process here when FORECAST_KILL_AT == name; otherwise nothing."""
    if os.environ.get(KILL_AT) != name:
        return
    marker = os.environ.get(MARKER)
    if marker:
        with open(marker, "w") as fh:
            fh.write(f"{name} {os.getpid()}\n")
            fh.flush()
            os.fsync(fh.fileno())
    os.kill(os.getpid(), signal.SIGKILL)

"""Progress you can watch: one logger for stage code, and a throttled progress reporter.

`run_logger()` is Prefect's run logger inside a flow or task run (the lines show in the UI's
logs and on the terminal), else the standard `forecast.<name>` logger, which the stage runner
(`python -m flows.stages`, what `dvc repro` runs) prints as one terminal line each. Prefect is
never imported here: a process that has not imported it cannot be inside one of its runs.

`Progress` logs a long loop's state at most every `every_s` seconds (default 10): done/total,
rate and ETA. Train uses it per batch inside long epochs; stages with many files or series call
`update()` once per item or batch of items (ingest: per file read; evaluate and publish: per batch
of series the statistical candidates are fitted on, tasks/evaluation/statistical.py, whose batches
last about 10 s; publish: per target), e.g.

    progress = Progress("evaluate", total=n_series, unit="series")
    for i, sid in enumerate(series, 1):
        ...
        progress.update(i)
    progress.done()
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

EVERY_S = 10.0  # the longest a long stage stays silent


def run_logger(name: str = "forecast") -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger when called inside a flow/task run, else `logging.getLogger(name)`."""
    if "prefect" in sys.modules:
        from prefect.context import FlowRunContext, TaskRunContext

        if TaskRunContext.get() is not None or FlowRunContext.get() is not None:
            from prefect import get_run_logger

            return get_run_logger()
    return logging.getLogger(name)


def duration(seconds: float) -> str:
    """`1h02m`, `4m05s`, `12s`: an ETA short enough for one log line."""
    s = max(int(round(seconds)), 0)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def rate(per_s: float) -> str:
    """`12.3k`, `950`, `1.20M`: a count per second, three significant figures."""
    if per_s >= 1e6:
        return f"{per_s / 1e6:.3g}M"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.3g}k"
    return f"{per_s:.3g}"


class Progress:
    """Throttled progress lines: `<what>: 1200/10000 series (12 %), 95.2 series/s, ETA 1m32s`.

    `clock` is injectable so tests can step time instead of sleeping.
    """

    def __init__(
        self,
        what: str,
        total: int | None = None,
        unit: str = "items",
        every_s: float = EVERY_S,
        log: logging.Logger | logging.LoggerAdapter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
        self.log = log if log is not None else run_logger()
        self.clock = clock
        self.started = self.last = clock()
        self.count = 0

    def line(self, done: int) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        per_s = done / elapsed
        text = f"{self.what}: {done}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100 * done / self.total:.0f} %)"
        else:
            text += f" {self.unit}"
        text += f", {rate(per_s)} {self.unit}/s"
        if self.total and per_s > 0:
            text += f", ETA {duration((self.total - done) / per_s)}"
        return text

    def update(self, done: int, extra: str = "") -> bool:
        """Record `done` items so far; log if `every_s` passed since the last line. True if it
        logged."""
        self.count = done
        now = self.clock()
        if now - self.last < self.every_s:
            return False
        self.last = now
        self.log.info("%s%s", self.line(done), f" {extra}" if extra else "")
        return True

    def done(self, extra: str = "") -> None:
        elapsed = self.clock() - self.started
        self.log.info(
            "%s: %d %s in %s%s",
            self.what,
            self.count,
            self.unit,
            duration(elapsed),
            f" {extra}" if extra else "",
        )

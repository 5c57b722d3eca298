"""What a pipeline run ended with, for the run report (flows/report.py) to say first: published,
nothing changed, ingest refused the data, the gate refused the model, or a stage crashed; and
which stages' outputs on disk belong to this run's data (the report marks the others as an
earlier run's).

The flow records its progress in `PROGRESS` as it goes (flows/pipeline.py); its end hooks run in
the same process and read it. A hook run elsewhere (the runner marking a killed run Crashed)
finds no progress and says the stage is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.errors import DataError, GateFailed
from tasks.textfmt import clip

PUBLISHED, UNCHANGED, COMPLETED = "published", "unchanged", "completed"
INGEST_REFUSED, GATE_REFUSED, CRASHED = "ingest_refused", "gate_refused", "crashed"
ON_DISK = "on_disk"  # `forecast report` outside a run: the outputs as they are

# The flow's progress: stages whose outputs are this run's data's (ran or skipped as unchanged),
# and the stage running now. Reset when a run starts.
PROGRESS: dict = {"done": [], "current": None}


def start_run() -> None:
    PROGRESS.update(done=[], current=None)


def stage_started(name: str) -> None:
    PROGRESS["current"] = name


def stage_done(name: str) -> None:
    PROGRESS["done"] = [*PROGRESS["done"], name]
    PROGRESS["current"] = None


@dataclass(frozen=True)
class Outcome:
    kind: str
    headline: str
    detail: str = ""  # the refusal or the error, as the run said it
    done: tuple[str, ...] = ()  # stages whose outputs are this run's data's
    run: bool = True  # False: `forecast report` outside a run
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.kind in (PUBLISHED, UNCHANGED, COMPLETED, ON_DISK)

    def current(self, stage: str) -> bool:
        """The outputs of `stage` on disk are this run's data's (always so outside a run)."""
        return not self.run or stage in self.done


UNCHANGED_TEXT = "the published forecasts are unchanged"
# tasks.errors.DataError's kinds, as a failed state's message names them when the exception
# itself is not at hand.
_DATA_ERRORS = ("DataValidationError", "DataSourceError", "SourceMismatch", "SourceUnavailable")


def on_disk() -> Outcome:
    return Outcome(
        ON_DISK, "Report of the outputs on disk (not written by a pipeline run)", run=False
    )


def from_state(state, progress: dict | None = None) -> Outcome:
    """The outcome of a finished flow run from its final Prefect state and PROGRESS."""
    progress = PROGRESS if progress is None else progress
    done, current = tuple(progress.get("done") or ()), progress.get("current")
    if state.is_completed():
        summary = _result(state)
        ran = list((summary or {}).get("ran") or [])
        if summary is not None and not ran:
            return Outcome(UNCHANGED, "Nothing changed: every stage was skipped (DVC hashes "
                           f"match); {UNCHANGED_TEXT}", done=done)  # fmt: skip
        if "publish" in ran:
            return Outcome(PUBLISHED, f"Published: this run's forecasts (ran {', '.join(ran)})",
                           done=done)  # fmt: skip
        text = f"Completed: ran {', '.join(ran) or 'its stages'}; {UNCHANGED_TEXT}"
        return Outcome(COMPLETED, text, done=done)
    error = _result(state)
    message = clip(str(error) if isinstance(error, BaseException) else state.message or "", 4000)
    if isinstance(error, GateFailed) or "GateFailed" in (state.message or ""):
        return Outcome(GATE_REFUSED, "NOT PUBLISHED: the gate refused this run's model; "
                       f"{UNCHANGED_TEXT}", message, done)  # fmt: skip
    said = state.message or ""
    data_error = isinstance(error, DataError) or any(n in said for n in _DATA_ERRORS)
    failed = current or ("ingest" if data_error and not done else None)
    if failed == "ingest" and data_error:
        return Outcome(INGEST_REFUSED, "Ingest refused this run's data: nothing after ingest ran; "
                       f"{UNCHANGED_TEXT}", message, done)  # fmt: skip
    where = f"in stage {failed}" if failed else "(stage unknown)"
    kind = "crashed" if state.is_crashed() else "failed"
    return Outcome(CRASHED, f"The run {kind} {where}: stages after it did not run; "
                   f"{UNCHANGED_TEXT}", message, done)  # fmt: skip


def _result(state):
    """The flow's return value (completed) or its exception (failed); None when unavailable."""
    try:
        return state.result(raise_on_failure=False)
    except Exception:
        return None

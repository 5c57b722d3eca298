"""Per-series work on a Dask cluster: `execution.engine: dask` (docs/scale.md "What runs where").

The statistical candidates' fits (`statistical.forecast_many`: every backtest fold, the short
series, publish's candidate forecasts) are cut into partitions of series and each partition is
one Dask task running the very StatsForecast call the local engine makes (`n_jobs=1`: one
worker process per core is the parallelism). A series' forecast depends on nothing but its own
history, the models and the season rule, so the results are the local engine's, bit for bit
(tests/tasks/evaluation/test_distributed.py runs a scheduler and two workers and compares).
Why dask.distributed directly and not statsforecast's fugue backend or prefect-dask:
docs/decisions.md.

The workers run the project's own code (the task is `statistical._statsforecast_call`, pickled
by reference): each worker is started from a checkout of the same commit in the same locked
environment (`./run.sh dask worker tcp://SCHEDULER:8786 --nworkers N --nthreads 1`). `connect`
checks that before any work: a worker whose statsforecast, numpy or statistical.py differs from
this process's would give other forecasts, so the run stops and names it.

Failures: a scheduler that cannot be reached within `execution.connect_timeout_s` stops the run
before any work (SchedulerUnreachable: exit 2 naming the address). A worker that dies mid-stage
loses its running partitions; the scheduler runs them again on the others (up to
`distributed.scheduler.allowed-failures` deaths per partition), and the stage completes with the
same results. A partition that kept killing workers, a scheduler lost mid-stage, or a cluster
left without workers for `execution.no_workers_timeout_s` fails the stage with a message
(ClusterFailed); the stage writes its outputs only after all its work, so nothing is half
published.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tasks.errors import PipelineError

log = logging.getLogger("forecast")

# Partitions per worker thread: enough for the faster workers to take the slower ones' share and
# for a dead worker to lose little; the cap bounds one partition's time (and what a death loses).
PARTITIONS_PER_SLOT = 4
MAX_PARTITION = 500
POLL_S = 5.0  # how often a wait checks that the cluster still has workers


class SchedulerUnreachable(PipelineError):
    """The Dask scheduler of `execution.address` did not answer: nothing was run."""


class ClusterFailed(PipelineError):
    """The cluster could not finish the work (workers lost for good, scheduler gone)."""


def identity() -> dict[str, str]:
    """What decides a fit's result besides its inputs: the libraries and the fitting code. Run on
    every worker and here; they must be equal."""
    import numpy
    import statsforecast

    from tasks.evaluation import statistical

    code = Path(statistical.__file__).read_bytes()
    return {
        "statsforecast": statsforecast.__version__,
        "numpy": numpy.__version__,
        "statistical.py": hashlib.md5(code).hexdigest(),
    }


class DaskEngine:
    """A connected Dask client that runs partitions of series (`map`)."""

    def __init__(self, client, address: str, no_workers_timeout_s: float = 300.0):
        self.client = client
        self.address = address
        self.no_workers_timeout_s = no_workers_timeout_s

    def slots(self) -> int:
        """The worker threads of the cluster now (at least 1)."""
        return max(sum(self.client.nthreads().values()), 1)

    def describe(self) -> str:
        workers = self.client.nthreads()
        return f"on the Dask cluster {self.address} ({len(workers)} workers)"

    def partitions(self, members: Sequence[int]) -> list[list[int]]:
        """`members` cut into consecutive partitions (PARTITIONS_PER_SLOT per worker thread, at
        most MAX_PARTITION series each)."""
        if not members:
            return []
        count = max(self.slots() * PARTITIONS_PER_SLOT, math.ceil(len(members) / MAX_PARTITION))
        size = math.ceil(len(members) / min(count, len(members)))
        return [list(members[at : at + size]) for at in range(0, len(members), size)]

    def map(self, fn: Callable, calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """(index, fn(*calls[index])) for every call, in the order they finish on the cluster."""
        from distributed import CancelledError, wait

        futures = {self.client.submit(fn, *args, pure=False): i for i, args in enumerate(calls)}
        pending = set(futures)
        alone_since: float | None = None
        poll = min(POLL_S, self.no_workers_timeout_s)
        try:
            while pending:
                try:
                    with self.client.as_current():
                        done, pending = wait(pending, timeout=poll, return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished within POLL_S
                    done = set()
                except CancelledError as err:  # the client lost the scheduler
                    raise self._lost(err) from None
                for future in done:
                    yield futures[future], self._result(future)
                if done or self._workers():
                    alone_since = None
                    continue
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > self.no_workers_timeout_s:
                    raise ClusterFailed(
                        f"the Dask cluster {self.address} has had no worker for "
                        f"{self.no_workers_timeout_s:g} s (execution.no_workers_timeout_s) with "
                        f"{len(pending)} of {len(futures)} partitions of series left; start "
                        "workers or set execution.engine: local"
                    )
        finally:
            if pending:  # the stage stops: the cluster drops what is left (if still reachable)
                with contextlib.suppress(Exception):
                    self.client.cancel(list(pending))

    def _lost(self, err: BaseException) -> ClusterFailed:
        first = (str(err).strip().splitlines() or [""])[0]
        return ClusterFailed(
            f"lost the Dask scheduler {self.address} mid-stage ({type(err).__name__}: {first}); "
            "the stage stopped, nothing was published. Restart the scheduler and its workers "
            "and rerun, or set execution.engine: local"
        )

    def _workers(self) -> int:
        try:
            return len(self.client.nthreads())
        except (OSError, TimeoutError) as err:  # the scheduler went away
            raise self._lost(err) from None

    def _result(self, future):
        from distributed import CancelledError, KilledWorker

        try:
            return future.result()
        except KilledWorker as err:
            raise ClusterFailed(
                f"the Dask cluster {self.address} lost a worker on each of its tries at a "
                f"partition of series ({err}); nothing was published. Look at the workers' "
                "logs (memory, a crash in a fit), or set execution.engine: local"
            ) from None
        except (OSError, TimeoutError, CancelledError) as err:  # the scheduler went away
            raise self._lost(err) from None


def check_workers(client, address: str) -> None:
    """Every worker fits as this process would: same libraries, same statistical.py."""
    here = identity()
    try:
        theirs = client.run(identity)
    except Exception as err:  # noqa: BLE001 - a worker without the project: one line
        raise ClusterFailed(
            f"a worker of the Dask cluster {address} cannot run the project's code ({err}); "
            "start workers from a checkout of this commit: ./run.sh dask worker "
            f"{address} --nthreads 1"
        ) from None
    for worker, found in theirs.items():
        differ = {k: (found.get(k), v) for k, v in here.items() if found.get(k) != v}
        if differ:
            said = ", ".join(f"{k} {w} there, {h} here" for k, (w, h) in differ.items())
            raise ClusterFailed(
                f"Dask worker {worker} would fit differently ({said}); start it from a checkout "
                "of this commit in the locked environment (./run.sh dask worker ...)"
            )


@contextmanager
def connect(
    address: str, timeout_s: float = 10.0, no_workers_timeout_s: float = 300.0
) -> Iterator[DaskEngine]:
    """A DaskEngine on the scheduler at `address`, closed on exit. SchedulerUnreachable when it
    does not answer within `timeout_s`; ClusterFailed when a worker runs other code."""
    from distributed import Client

    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler {address} (execution.address) within "
            f"{timeout_s:g} s: {first}. Start it (`./run.sh dask scheduler`), fix the address, "
            "or set execution.engine: local"
        ) from None
    try:
        check_workers(client, address)
        yield DaskEngine(client, address, no_workers_timeout_s)
    finally:
        client.close()


@contextmanager
def engine(cfg) -> Iterator[DaskEngine | None]:
    """The per-series engine `cfg.execution` names, in use by `statistical.forecast_many` inside
    the block: None (this machine) for `local`, a connected DaskEngine for `dask`."""
    from tasks.evaluation import statistical

    ex = cfg.execution
    if ex.engine == "local":
        yield None
        return
    with connect(ex.address, ex.connect_timeout_s, ex.no_workers_timeout_s) as eng:
        log.info("per-series fits %s", eng.describe())
        with statistical.using(eng):
            yield eng


def check_reachable(cfg) -> None:
    """Stop a run whose Dask scheduler does not answer before any stage works (exit 2)."""
    with engine(cfg):
        pass

"""A real Dask cluster on 127.0.0.1 for tests and benchmarks: `dask scheduler` and `dask worker`
started as separate processes (the commands a team runs on its machines), on free ports, each
worker one process with one thread and no nanny (so killing it kills the worker for good).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.waits import HANG_S

ROOT = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, address: str, scheduler: subprocess.Popen, logs: Path):
        self.address = address
        self.scheduler = scheduler
        self.workers: list[subprocess.Popen] = []
        self.logs = logs

    def add_worker(self, code: Path = ROOT) -> subprocess.Popen:
        """One more worker, importing the project from `code` (default: this checkout)."""
        i = len(self.workers)
        log = (self.logs / f"worker-{i}.log").open("wb")
        env = {**os.environ, "PYTHONPATH": str(code)}
        proc = subprocess.Popen(
            [DASK, "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
             "--host", "127.0.0.1", "--name", f"w{i}", "--local-directory",
             str(self.logs / f"w{i}")],
            cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=HANG_S, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=HANG_S)

    def kill_worker(self, i: int) -> None:
        self.workers[i].send_signal(signal.SIGKILL)
        self.workers[i].wait(timeout=HANG_S)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=HANG_S)

    def log_text(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.logs.glob("*.log"))
        )


@contextmanager
def dask_cluster(tmp: Path, workers: int = 2):
    """A scheduler and `workers` workers on 127.0.0.1, all ready; stopped on exit."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "True"}
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        cwd=ROOT, env=env, stdout=(tmp / "scheduler.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    cluster = Cluster(address, scheduler, tmp)
    try:
        deadline = time.monotonic() + HANG_S
        while True:  # the scheduler listens
            if scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited:\n{cluster.log_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"dask scheduler not listening:\n{cluster.log_text()}")
            time.sleep(0.2)
        for _ in range(workers):
            cluster.add_worker()
        if workers:
            cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.stop()

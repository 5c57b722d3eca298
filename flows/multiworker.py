"""Train with several worker processes (MultiWorkerMirroredStrategy) on this host.

    python -m flows.multiworker --workers 2          # default: training.workers in params.yaml

starts N worker processes on 127.0.0.1, each with its own TF_CONFIG (the same cluster, its own
task index). They build the model under MultiWorkerMirroredStrategy, read the same prepared
arrays, each take their share of every global batch (data sharding by batch element) and
all-reduce the gradients, so their weights stay identical. Worker 0 is the chief: it alone
writes the train stage's outputs (models/model.keras, plots/training_curve.csv,
metrics/train.json), so evaluate and publish use the result as they would a single-process one.
The other workers write only scratch under checkpoints/worker_<i>/. On several hosts run
`python -m flows.multiworker --worker-index I --cluster h0:p0,h1:p1,...` on each host instead.

TensorFlow's worker port listens on every interface, unauthenticated (flows/netns.py): local
workers therefore run in a private network namespace with only loopback (the host's network
never sees their ports; FORECAST_MULTIWORKER_NETWORK=host opts out), and a worker started by
hand refuses cluster addresses outside private networks unless --allow-public-network.

The chief writes into a staging directory (checkpoints/.multiworker-*); the launcher moves its
files onto the outputs, each atomically, only once every worker has exited 0. If any worker
fails or times out, the launcher stops the others, exits non-zero with the failed worker's last
stderr lines, and the previous outputs stay as they were. The train stage runs the same launcher
(`run_workers`) when training.workers > 1. With training.resume a rerun resumes from each
worker's backup.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from flows.netns import (
    NETWORK_ENV,
    NoPrivateNetwork,
    check_private_cluster,
    enter_private_network,
    network_mode,
)
from tasks import io, tflog
from tasks.config import Config, load_config
from tasks.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT_S = 3600.0
LOG_TAIL_LINES = 20  # of a failed worker's stderr, in the error: its traceback's end


class TrainingFailed(PipelineError):
    """A worker failed or timed out: the previous train outputs stay in place."""


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# Every worker must know every worker's address before any of them starts, so the launcher picks
# the ports (bind port 0, read the number, close) and each worker's gRPC server binds its own
# later. Another process can take a port in between: that worker then fails to start its server
# ("Could not start gRPC server"), and the launcher starts the whole cluster again on new ports,
# up to BIND_ATTEMPTS times. (Letting each worker bind port 0 itself would need a rendezvous to
# share the numbers before TF_CONFIG is read; a retry is simpler and as safe.)
BIND_ATTEMPTS = 3
PORT_TAKEN = ("Could not start gRPC server", "Address already in use", "Failed to add port")


NO_PRIVATE_NETWORK = 3  # the supervisor's exit code when it cannot get a namespace


def _run_cluster(
    n: int, common: list[str], env: dict, logs: list[Path], timeout: float
) -> dict[int, int]:
    """Start the n workers on fresh ports and wait for them (see `_wait`): inside a private
    network namespace (a supervisor process enters it and starts them there), unless
    FORECAST_MULTIWORKER_NETWORK=host."""
    if network_mode() == "host":
        return _start_and_wait(n, common, env, logs, timeout)
    spec = logs[0].parent / "cluster.json"
    codes_file = logs[0].parent / "codes.json"
    codes_file.unlink(missing_ok=True)
    spec.write_text(json.dumps({"n": n, "common": common, "logs": [str(p) for p in logs],
                                "timeout": timeout, "codes": str(codes_file)}))  # fmt: skip
    supervisor_log = logs[0].parent / "supervisor.log"
    with open(supervisor_log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.multiworker", "--private-cluster", str(spec)],
            cwd=ROOT, env=env, stderr=err,
        )  # fmt: skip
    try:
        code = proc.wait(timeout=timeout + 60)  # it enforces `timeout` on the workers itself
    except subprocess.TimeoutExpired:
        proc.terminate()  # its SIGTERM handler stops the workers
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    if code == NO_PRIVATE_NETWORK:
        reason = supervisor_log.read_text(errors="replace").strip().splitlines()[-1:]
        raise TrainingFailed(
            f"cannot start the {n} workers in a private network namespace ({' '.join(reason)}): "
            "their TensorFlow ports would listen on every interface of this host; run as root "
            "or enable unprivileged user namespaces, or set "
            f"{NETWORK_ENV}=host to accept open ports; the previous train outputs are unchanged"
        )
    if not codes_file.exists():  # the supervisor itself failed: its log tail says why
        with open(logs[0], "ab") as log:
            log.write(supervisor_log.read_bytes())
        return {0: code or 1}
    return {int(k): v for k, v in json.loads(codes_file.read_text()).items()}


def supervise(spec_path: Path) -> int:
    """The private cluster's supervisor: enter a new network namespace, start the workers in it
    (they inherit it), wait for them, write their exit codes."""
    spec = json.loads(Path(spec_path).read_text())
    try:
        enter_private_network()  # first thing: this process still has a single thread
    except NoPrivateNetwork as err:
        print(f"flows.multiworker: {err.strerror}", file=sys.stderr, flush=True)
        return NO_PRIVATE_NETWORK

    def stop(signum, frame):  # the launcher's deadline: _wait's `finally` stops the workers
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, stop)
    env = dict(os.environ)
    logs = [Path(p) for p in spec["logs"]]
    codes = _start_and_wait(spec["n"], spec["common"], env, logs, spec["timeout"])
    io.write_json(Path(spec["codes"]), {str(k): v for k, v in codes.items()})
    return 0


def _start_and_wait(
    n: int, common: list[str], env: dict, logs: list[Path], timeout: float
) -> dict[int, int]:
    """Start the n workers on fresh ports of this network namespace and wait for them."""
    cluster = ",".join(f"127.0.0.1:{p}" for p in free_ports(n))
    procs = []
    for i, log in enumerate(logs):
        # stderr to a file: its tail goes into the error of a failed run.
        with open(log, "wb") as err:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "flows.multiworker", "--worker-index", str(i), *common,
                 "--cluster", cluster],
                cwd=ROOT, env=env, stderr=err,
            ))  # fmt: skip
    return _wait(procs, timeout)


def _lost_a_port(codes: dict[int, int], logs: list[Path]) -> bool:
    """A worker failed because its port was taken (not for a reason a retry would repeat)."""
    failed = [i for i, c in codes.items() if c != 0]
    return any(
        any(s in logs[i].read_text(errors="replace") for s in PORT_TAKEN)
        for i in failed
        if logs[i].exists()
    )


def tf_config(cluster: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})


def worker(args: argparse.Namespace) -> int:
    """One worker process: TF_CONFIG must be set before TensorFlow starts."""
    cluster = args.cluster.split(",")
    if not args.allow_public_network:
        try:
            check_private_cluster(cluster)
        except ValueError as err:
            print(f"flows.multiworker: {err}", file=sys.stderr)
            return 2
    os.environ["TF_CONFIG"] = tf_config(cluster, args.worker_index)
    # Epoch lines (tasks/model/train.py) to stderr: the terminal on a host of its own, the worker's
    # log file under the local launcher.
    fmt = f"%(asctime)s worker {args.worker_index} %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)
    from tasks.model.strategy import make_strategy

    strategy = make_strategy()  # MultiWorkerMirroredStrategy, before anything else touches TF

    from tasks.evaluation.backtest import training_fold
    from tasks.features.prepare import Prepared
    from tasks.model.train import train

    cfg = load_config(args.params)
    # The fold the single-process stage fits too (flows/stages/train.py).
    prepared = training_fold(Prepared.load(args.prepared, args.scaler), cfg)
    result = train(prepared, cfg, checkpoint_dir=Path(args.checkpoints), strategy=strategy)
    if args.weights_out:
        import numpy as np

        out = Path(args.weights_out)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / f"worker_{args.worker_index}.npz", *result.model.get_weights())
    if args.worker_index == 0:  # the chief alone writes the stage outputs
        io.write_atomic(Path(args.model), result.model.save)
        if args.outputs:
            io.write_atomic(Path(args.history), result.history.write_csv)
            workers = len(args.cluster.split(","))
            io.write_json(Path(args.metrics), {**result.summary, "workers": workers})
    print(json.dumps({"worker": args.worker_index, **result.summary}), flush=True)
    return 0


def _wait(procs: list[subprocess.Popen], timeout: float) -> dict[int, int]:
    """Exit codes of the workers that ended, polling until all did, one failed, or the deadline;
    then stops whatever still runs (a worker left waiting for a failed peer's collective)."""
    deadline = time.monotonic() + timeout
    codes: dict[int, int] = {}
    try:
        while len(codes) < len(procs):
            for i, p in enumerate(procs):
                if i not in codes and p.poll() is not None:
                    codes[i] = p.returncode
            if any(c != 0 for c in codes.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return codes


def _tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    text = log.read_text(errors="replace").rstrip() if log.exists() else ""
    return "\n".join("  " + line for line in text.splitlines()[-lines:]) or "  (no output)"


def _failure(codes: dict[int, int], workers: int, timeout: float, logs: list[Path]) -> str:
    failed = {i: c for i, c in codes.items() if c != 0}
    stopped = [i for i in range(workers) if i not in codes]
    if failed:
        first = min(failed)
        what = ", ".join(f"worker {i} exited with code {c}" for i, c in sorted(failed.items()))
        detail = f"\nworker {first}'s stderr ends with:\n{_tail(logs[first])}"
    else:
        what, detail = f"timed out after {timeout:g} s", ""
    if stopped:
        what += f" (stopped worker(s) {', '.join(map(str, stopped))})"
    return (
        f"training with {workers} workers failed: {what}; the previous train outputs are "
        f"unchanged{detail}"
    )


def run_workers(
    cfg: Config,
    *,
    prepared: Path,
    scaler: Path,
    model: Path,
    checkpoints: Path,
    history: Path | None = None,
    metrics: Path | None = None,
    workers: int | None = None,
    weights_out: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict:
    """Train `cfg` with `workers` (default: training.workers) local processes; returns the
    chief's summary (with "workers").

    Writes `model`, and `history` / `metrics` when given, exactly as the single-process train
    stage does, and only after every worker exited 0; otherwise raises TrainingFailed and
    leaves them as they were.
    """
    n = cfg.training.workers if workers is None else workers
    if n < 2:
        raise ValueError(f"multi-worker training needs at least 2 workers, got {n}")
    checkpoints = Path(checkpoints).resolve()
    checkpoints.mkdir(parents=True, exist_ok=True)
    # Scratch beside the workers' own, so the stage's outputs change only in the final moves.
    staging = Path(tempfile.mkdtemp(prefix=".multiworker-", dir=checkpoints))
    try:
        staged = {
            "model": staging / "model.keras",
            "history": staging / "training_curve.csv",
            "metrics": staging / "train.json",
        }
        # The workers read exactly this config, even one built in memory rather than loaded.
        params = staging / "params.yaml"
        params.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        env = dict(os.environ)
        if env.get(tflog.ENV) in (None, env.get(tflog.MARK)):
            # Not the user's choice: the workers' stderr goes to log files, whose tail is the
            # error of a failed run, and "Could not start gRPC server" there means "retry".
            env[tflog.ENV] = "2"
            env.pop(tflog.MARK, None)
        env.pop("TF_CONFIG", None)
        inputs = {"params": params, "prepared": Path(prepared).resolve(),
                  "scaler": Path(scaler).resolve(), "checkpoints": checkpoints}  # fmt: skip
        common = [x for k, v in {**inputs, **staged}.items() for x in (f"--{k}", str(v))]
        if weights_out:
            common += ["--weights-out", str(Path(weights_out).resolve())]
        logs = [staging / f"worker_{i}.log" for i in range(n)]
        for attempt in range(1, BIND_ATTEMPTS + 1):
            codes = _run_cluster(n, common, env, logs, timeout)
            if not (attempt < BIND_ATTEMPTS and _lost_a_port(codes, logs)):
                break
        if len(codes) < n or any(c != 0 for c in codes.values()):
            raise TrainingFailed(_failure(codes, n, timeout, logs))
        if not all(p.exists() for p in staged.values()):
            raise TrainingFailed(
                f"training with {n} workers: every worker exited 0 but the chief (worker 0) "
                f"left no outputs in {staging}; the previous train outputs are unchanged"
            )
        summary = io.read_json(staged["metrics"])
        # Same order and atomic writes as the single-process stage (flows/stages/train.py).
        targets = {"model": model, "history": history, "metrics": metrics}
        for key, target in targets.items():
            if target is not None:
                io.write_atomic(target, lambda tmp, src=staged[key]: shutil.copyfile(src, tmp))
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def launch(args: argparse.Namespace) -> int:
    """The command line's launcher: `run_workers` with the paths given; exit 1 if it failed."""
    try:
        cfg = load_config(args.params)
    except PipelineError as err:
        print(f"flows.multiworker: {err}", file=sys.stderr)
        return 2
    workers = cfg.training.workers if args.workers is None else args.workers
    if workers < 2:
        print("flows.multiworker: --workers must be >= 2 (use the train stage for one process)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        run_workers(
            cfg, prepared=args.prepared, scaler=args.scaler, model=args.model,
            checkpoints=args.checkpoints, history=args.history if args.outputs else None,
            metrics=args.metrics if args.outputs else None, workers=workers,
            weights_out=args.weights_out, timeout=args.timeout,
        )  # fmt: skip
    except TrainingFailed as err:
        print(f"flows.multiworker: {err}", file=sys.stderr)
        return 1
    return 0


# `forecast multiworker --help`: for users (the module docstring is for developers).
HELP = """Train with several worker processes (MultiWorkerMirroredStrategy) on this host.

    forecast multiworker --workers 2     # default: training.workers in params.yaml

Writes the train stage's outputs (models/model.keras, metrics/train.json) once every worker
succeeded; on a failure the previous outputs stay. Several hosts: docs/scale.md.
"""


def main(argv: list[str] | None = None) -> int:
    from tasks import catalog
    from tasks.config import DEFAULT_PARAMS

    user = sys.argv[0].startswith("forecast")  # `forecast multiworker` (flows/cli.py)
    p = argparse.ArgumentParser(
        description=HELP if user else __doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--workers", type=int, default=None, help="default: training.workers")
    p.add_argument(
        "--params", type=Path, default=DEFAULT_PARAMS, help="params file (default: params.yaml)"
    )
    p.add_argument("--prepared", type=Path, default=catalog.path("prepared"))
    p.add_argument("--scaler", type=Path, default=catalog.path("scaler"))
    p.add_argument("--model", type=Path, default=catalog.path("model"))
    p.add_argument("--checkpoints", type=Path, default=catalog.path("checkpoints"))
    p.add_argument("--history", type=Path, default=catalog.path("history"))
    p.add_argument("--metrics", type=Path, default=catalog.path("metrics_train"))
    p.add_argument(
        "--weights-out",
        type=Path,
        default=None,
        help="each worker saves its final weights here (worker_<i>.npz)",
    )
    p.add_argument(
        "--no-outputs",
        dest="outputs",
        action="store_false",
        help="the chief writes only --model (not --history/--metrics)",
    )
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    p.add_argument("--worker-index", type=int, default=None, help="run one worker (multi-host)")
    p.add_argument("--cluster", default=None, help="host:port,... of every worker, in order")
    p.add_argument(
        "--allow-public-network",
        action="store_true",
        help="accept cluster addresses outside private networks (the worker port listens on "
        "every interface, unauthenticated: firewall it to the peers)",
    )
    p.add_argument("--private-cluster", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.private_cluster is not None:
        return supervise(args.private_cluster)
    if args.worker_index is not None:
        if not args.cluster:
            p.error("--worker-index needs --cluster")
        return worker(args)
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())

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

If any worker fails, the launcher stops the others and exits non-zero; nothing is written
unless the chief finished. With training.resume a rerun resumes from each worker's backup.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def tf_config(cluster: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})


def worker(args: argparse.Namespace) -> int:
    """One worker process: TF_CONFIG must be set before TensorFlow starts."""
    os.environ["TF_CONFIG"] = tf_config(args.cluster.split(","), args.worker_index)
    from tasks.strategy import make_strategy

    strategy = make_strategy()  # MultiWorkerMirroredStrategy, before anything else touches TF

    from tasks import io, paths
    from tasks.config import load_config
    from tasks.prepare import Prepared
    from tasks.train import train

    cfg = load_config(args.params)
    prepared = Prepared.load(args.prepared, args.scaler)
    result = train(prepared, cfg, checkpoint_dir=Path(args.checkpoints), strategy=strategy)
    if args.weights_out:
        import numpy as np

        out = Path(args.weights_out)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / f"worker_{args.worker_index}.npz", *result.model.get_weights())
    if args.worker_index == 0:  # the chief alone writes the stage outputs
        io.write_atomic(Path(args.model), result.model.save)
        if args.outputs:
            io.write_atomic(paths.HISTORY, result.history.write_csv)
            workers = len(args.cluster.split(","))
            io.write_json(paths.METRICS_TRAIN, {**result.summary, "workers": workers})
    print(json.dumps({"worker": args.worker_index, **result.summary}), flush=True)
    return 0


def launch(args: argparse.Namespace) -> int:
    """Start `workers` local processes, wait for all; stop the rest if one fails."""
    if args.workers is None:
        from tasks.config import load_config

        args.workers = load_config(args.params).training.workers
    if args.workers < 2:
        print("flows.multiworker: --workers must be >= 2 (use the train stage for one process)",
              file=sys.stderr)  # fmt: skip
        return 2
    cluster = ",".join(f"127.0.0.1:{p}" for p in free_ports(args.workers))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    env.pop("TF_CONFIG", None)
    files = {k: Path(getattr(args, k)).resolve()
             for k in ("params", "prepared", "scaler", "model", "checkpoints")}  # fmt: skip
    common = [x for k, v in files.items() for x in (f"--{k}", str(v))] + ["--cluster", cluster]
    if args.weights_out:
        common += ["--weights-out", str(Path(args.weights_out).resolve())]
    if not args.outputs:
        common += ["--no-outputs"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flows.multiworker", "--worker-index", str(i), *common],
            cwd=ROOT, env=env,
        )
        for i in range(args.workers)
    ]  # fmt: skip
    deadline = time.monotonic() + args.timeout
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
            if p.poll() is None:  # a worker left waiting for a failed peer's collective
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    failed = {i: c for i, c in codes.items() if c != 0}
    if failed or len(codes) < len(procs):
        print(f"flows.multiworker: workers failed or timed out: {failed or 'timeout'}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from tasks import paths
    from tasks.config import DEFAULT_PARAMS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workers", type=int, default=None, help="default: training.workers")
    p.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    p.add_argument("--prepared", type=Path, default=paths.PREPARED)
    p.add_argument("--scaler", type=Path, default=paths.SCALER)
    p.add_argument("--model", type=Path, default=paths.MODEL)
    p.add_argument("--checkpoints", type=Path, default=paths.CHECKPOINTS)
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
        help="the chief writes only --model (no history/metrics)",
    )
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--worker-index", type=int, default=None, help="run one worker (multi-host)")
    p.add_argument("--cluster", default=None, help="host:port,... of every worker, in order")
    args = p.parse_args(argv)
    if args.worker_index is not None:
        if not args.cluster:
            p.error("--worker-index needs --cluster")
        return worker(args)
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())

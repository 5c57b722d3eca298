"""The train stage with `training.workers: 2` trains through the multi-worker launcher: two
workers on 127.0.0.1 (MultiWorkerMirroredStrategy, TF_CONFIG) end with identical weights, the
chief alone writes the single-process stage's outputs, which evaluate and publish consume
unchanged; a worker that fails fails the stage with its reason and leaves the previous outputs in
place. (One 2-worker cluster for the whole suite: the launcher-level test that trained a second
one was merged into this one.)"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import base_env, run, update_params
from tests.waits import HANG_S

TRAIN_OUTPUTS = ("models/model.keras", "plots/training_curve.csv", "metrics/train.json")
# Two workers, and as little training as still makes a model: 2 epochs, and one backtest fold
# (evaluate then scores the train stage's own model instead of fitting another).
TWO_WORKERS = {"training": {"workers": 2, "epochs": 2}, "evaluate": {"n_windows": 2}}


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays: dict[str, np.ndarray] = {}

    def keep(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(keep)
    return arrays


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


@pytest.mark.slow
def test_two_worker_train_stage_feeds_evaluate_and_publish(project: Path):
    update_params(project, TWO_WORKERS)

    trained = run(["dvc", "repro", "train"], project, env=base_env())
    assert ran_stages(trained.stdout) == ["ingest", "prepare", "train"]
    summary = json.loads((project / "metrics/train.json").read_text())
    assert summary["workers"] == 2
    assert summary["replicas"] == 2  # one replica per worker, all-reduced as one strategy
    assert summary["epochs"] == [2]
    assert all((project / rel).is_file() for rel in TRAIN_OUTPUTS)
    # Each worker's scratch, and no staging left behind.
    assert sorted(p.name for p in (project / "checkpoints").iterdir()) == ["worker_0", "worker_1"]
    # All-reduced gradients: both workers' best weights (their own checkpoints) are identical,
    # and they are the chief's model (EarlyStopping restores the best weights).
    w0, w1 = (_h5_arrays(project / f"checkpoints/worker_{i}/member_0.weights.h5") for i in (0, 1))
    assert w0 and w0.keys() == w1.keys()
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)
    from tasks.model.forecast import load_model

    model = load_model(project / "models/model.keras")
    saved = [np.asarray(w) for w in model.get_weights()]
    model.load_weights(project / "checkpoints/worker_1/member_0.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(saved, model.get_weights(), strict=True))
    assert not list(project.glob("checkpoints/**/*.keras"))  # only the chief's, in models/

    rest = run(["dvc", "repro"], project, env=base_env())
    # The monitor is not upstream of train: it runs with the rest, before publish reads it.
    assert ran_stages(rest.stdout) == ["monitor", "evaluate", "publish"]
    assert json.loads((project / "metrics/gate.json").read_text())["passed"] is True
    forecasts = pl.read_parquet(project / "published/forecasts.parquet")
    assert forecasts.height == 24  # the horizon after the last observation (1961-1962)
    values = forecasts["forecast"].to_numpy()
    assert np.isfinite(values).all()
    # AirPassengers ran 104-622 thousand a month through 1960; a seasonal-residual model, even
    # barely trained, stays in its order of magnitude.
    assert values.min() > 100 and values.max() < 2000
    assert run(["dvc", "status", "--json"], project, env=base_env()).stdout.strip() == "{}"


@pytest.mark.slow
def test_failed_worker_fails_the_stage_and_keeps_the_previous_outputs(project: Path):
    update_params(project, TWO_WORKERS)
    previous = {}
    for rel in TRAIN_OUTPUTS:  # stand-ins for an earlier run's outputs
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(f"previous {rel}\n")
        previous[rel] = (project / rel).read_bytes()
    # Inputs every worker fails to read (a half-written prepare output: the series lengths the
    # launcher resolves `auto` with are there, the rest is not), after TensorFlow started.
    (project / "data/prepared").mkdir(parents=True)
    np.savez(project / "data/prepared/arrays.npz", offsets=np.array([0, 144]))
    (project / "models/scaler.npz").write_bytes(b"")

    failed = run([sys.executable, "-m", "flows.stages", "train"], project, env=base_env(),
                 check=False)  # fmt: skip
    assert failed.returncode == 2, failed.stderr
    assert "train failed: training with 2 workers failed: worker" in failed.stderr
    assert "exited with code 1" in failed.stderr
    assert "previous train outputs are unchanged" in failed.stderr
    # The failed worker's own reason, from its stderr, is in the message.
    assert "KeyError: 'geometry is not a file in the archive'" in failed.stderr, failed.stderr
    assert {rel: (project / rel).read_bytes() for rel in TRAIN_OUTPUTS} == previous
    assert not list((project / "checkpoints").glob(".multiworker-*"))


def test_a_cluster_whose_port_was_taken_is_started_again_on_new_ports(tmp_path, monkeypatch):
    """The launcher picks the ports and the workers bind them later; a worker that lost its
    port (TensorFlow's "Could not start gRPC server") makes the launcher start the cluster again,
    any other failure does not (no real training here: the cluster run is replaced)."""
    from flows import multiworker
    from tasks.config import parse_config

    cfg = parse_config({"training": {"workers": 2}})
    attempts = []

    def fake_cluster(n, common, env, logs, timeout):
        attempts.append(common)
        if len(attempts) == 1:
            logs[1].write_text("E0000 ... UNKNOWN: Could not start gRPC server\n")
            return {1: 1}
        args = dict(zip(common[::2], common[1::2], strict=False))
        Path(args["--model"]).write_text("model")
        Path(args["--history"]).write_text("member,epoch\n")
        Path(args["--metrics"]).write_text('{"epochs": [1]}')
        return {0: 0, 1: 0}

    monkeypatch.setattr(multiworker, "_run_cluster", fake_cluster)
    out = {k: tmp_path / f"out.{k}" for k in ("model", "history", "metrics")}
    summary = multiworker.run_workers(
        cfg, prepared=tmp_path / "a.npz", scaler=tmp_path / "s.pkl",
        checkpoints=tmp_path / "ckpt", **out,
    )  # fmt: skip
    assert len(attempts) == 2 and summary == {"epochs": [1]}
    assert out["model"].read_text() == "model"

    def failing_cluster(n, common, env, logs, timeout):
        attempts.append(common)
        logs[0].write_text("ValueError: bad input\n")
        return {0: 1}

    attempts.clear()
    monkeypatch.setattr(multiworker, "_run_cluster", failing_cluster)
    with pytest.raises(multiworker.TrainingFailed, match="ValueError: bad input"):
        multiworker.run_workers(
            cfg, prepared=tmp_path / "a.npz", scaler=tmp_path / "s.pkl",
            checkpoints=tmp_path / "ckpt", **out,
        )  # fmt: skip
    assert len(attempts) == 1  # not a port problem: no retry


# ------------------------------------------------------------------------------ network boundary
ROOT = Path(__file__).resolve().parents[2]
LISTEN = "0A"  # TCP state in /proc/net/tcp


def _tiny_inputs(tmp: Path, epochs: int = 3) -> dict[str, Path]:
    """Prepared arrays, scaler and params of a tiny 2-worker training, written under `tmp`."""
    import yaml

    from tasks.features.prepare import prepare
    from tests.tasks.model.test_train import seasonal_frame, tiny_config

    cfg = tiny_config(epochs=epochs, ensemble=1, workers=2)
    prepared = prepare(seasonal_frame(), cfg)
    paths = {"prepared": tmp / "arrays.npz", "scaler": tmp / "scaler.npz",
             "params": tmp / "params.yaml"}  # fmt: skip
    prepared.save_arrays(paths["prepared"])
    prepared.transform.save(paths["scaler"])
    paths["params"].write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return paths


def _listening_ports(net_dir: str) -> set[int]:
    """Ports in LISTEN state in the network namespace whose /proc/<pid>/net is `net_dir`."""
    ports = set()
    for name in ("tcp", "tcp6"):
        path = Path(net_dir) / name
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == LISTEN:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _workers_of(marker: str) -> dict[int, list[str]]:
    """pid -> argv of the running worker processes whose command line contains `marker`."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "--worker-index" in argv and any(marker in a for a in argv):
            found[int(proc.name)] = argv
    return found


def _watch_cluster(cmd: list[str], marker: str, env: dict) -> tuple[int, dict]:
    """Run the launcher; while its workers run, record each one's network namespace, its
    interfaces, the ports it listens on, and whether this (the host's) namespace shows them."""
    import subprocess
    import time

    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen: dict = {}
    while proc.poll() is None:
        for pid, argv in _workers_of(marker).items():
            try:
                cluster = argv[argv.index("--cluster") + 1].split(",")
                ports = {int(a.rsplit(":", 1)[1]) for a in cluster}
                inside = _listening_ports(f"/proc/{pid}/net") & ports
                if not inside:
                    continue  # its TensorFlow server is not up yet
                w = seen.setdefault(pid, {"listening": set(), "on_host": set()})
                w["netns"] = os.readlink(f"/proc/{pid}/ns/net")
                w["interfaces"] = sorted(
                    line.split(":")[0].strip()
                    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
                )
                w["listening"] |= inside  # over the whole run: servers start one by one
                w["on_host"] |= _listening_ports("/proc/self/net") & ports
            except (OSError, ValueError, IndexError):
                continue  # it exited meanwhile
        time.sleep(0.1)
    out, err = proc.communicate()
    return proc.returncode, {"seen": seen, "stderr": err}


@pytest.mark.slow
def test_local_workers_listen_only_inside_a_private_network(tmp_path: Path):
    """Issue 11.2: TensorFlow binds the worker port on every interface; the launcher's private
    network namespace keeps it off the host's network. FORECAST_MULTIWORKER_NETWORK=host (the
    opt-out) shows what the namespace prevents: the same ports listening on the host."""
    inputs = _tiny_inputs(tmp_path, epochs=10)  # long enough to watch both workers listen
    results = {}
    for mode in ("private", "host"):
        ckpt = tmp_path / f"ckpt-{mode}"
        cmd = [sys.executable, "-m", "flows.multiworker", "--workers", "2",
               "--params", str(inputs["params"]), "--prepared", str(inputs["prepared"]),
               "--scaler", str(inputs["scaler"]), "--model", str(tmp_path / f"{mode}.keras"),
               "--checkpoints", str(ckpt), "--no-outputs",
               "--weights-out", str(tmp_path / f"weights-{mode}")]  # fmt: skip
        env = base_env(FORECAST_MULTIWORKER_NETWORK=mode)
        code, results[mode] = _watch_cluster(cmd, str(ckpt), env)
        assert code == 0, results[mode]["stderr"][-3000:]
        assert len(results[mode]["seen"]) == 2, results[mode]  # both workers, while listening

    host_ns = os.readlink("/proc/self/ns/net")
    private = list(results["private"]["seen"].values())
    assert private[0]["netns"] == private[1]["netns"] != host_ns  # one namespace, not ours
    assert len(set.union(*(w["listening"] for w in private))) == 2  # the cluster's, inside
    for w in private:
        assert w["interfaces"] == ["lo"]  # nothing but loopback to listen on
        assert w["on_host"] == set()  # and none of them on the host's network
    for w in results["host"]["seen"].values():
        assert w["netns"] == host_ns
        assert w["on_host"] == w["listening"] != set()  # TensorFlow's every-interface listen
    # Same training either way: the namespace changes where the ports are, nothing else.
    weights = {mode: [np.load(tmp_path / f"weights-{mode}/worker_{i}.npz") for i in (0, 1)]
               for mode in results}  # fmt: skip
    for a, b in [(weights["private"][0], weights["private"][1]),
                 (weights["private"][0], weights["host"][0])]:  # fmt: skip
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_a_worker_refuses_a_cluster_address_outside_private_networks(tmp_path: Path):
    proc = run([sys.executable, "-m", "flows.multiworker", "--worker-index", "0",
                "--cluster", "127.0.0.1:2222,8.8.8.8:2222"], ROOT, env=base_env(),
               check=False, timeout=HANG_S)  # fmt: skip
    assert proc.returncode == 2
    assert "cluster address '8.8.8.8:2222' is not a private-network address" in proc.stderr
    assert "--allow-public-network" in proc.stderr
    from flows.netns import private_address

    assert private_address("127.0.0.1") and private_address("10.1.2.3")
    assert private_address("fd00::1") and private_address("169.254.0.9")
    assert not private_address("8.8.8.8") and not private_address("2001:4860::8888")


# ------------------------------------------------------------------------------ two hosts
def _ip(*args: str) -> None:
    import subprocess

    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair, 10.X.Y.1 and 10.X.Y.2/24: two hosts on one
    machine. Skips where namespaces cannot be made (not root, no iproute2, a sandbox)."""
    import shutil
    import subprocess

    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` is not installed: cannot create network namespaces")
    tag = f"fc{os.getpid() % 100000}"
    names = (f"{tag}a", f"{tag}b")
    subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() // 50 % 250}"
    probe = subprocess.run(["ip", "netns", "add", names[0]], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"`ip netns add` is not permitted here: {probe.stderr.strip()}")
    try:
        _ip("netns", "add", names[1])
        _ip("link", "add", f"v{tag}a", "type", "veth", "peer", "name", f"v{tag}b")
        hosts = []
        for i, ns in enumerate(names):
            dev, addr = f"v{tag}{'ab'[i]}", f"{subnet}.{i + 1}"
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            hosts.append((ns, addr))
        yield hosts
    finally:
        for ns in names:  # deleting a namespace deletes its end of the veth pair, and the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.slow
def test_two_workers_on_two_hosts_train_identical_weights_and_only_the_chief_writes(
    tmp_path: Path, two_hosts
):
    """Issue 15.3: each worker in its own network namespace (its own interfaces and address),
    started as on a real host: `python -m flows.multiworker --worker-index I --cluster ...`."""
    import subprocess

    inputs = _tiny_inputs(tmp_path)
    cluster = ",".join(f"{addr}:23456" for _, addr in two_hosts)
    procs = []
    for i, (ns, _) in enumerate(two_hosts):
        host = tmp_path / f"host{i}"
        host.mkdir()
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "flows.multiworker",
               "--worker-index", str(i), "--cluster", cluster,
               "--params", str(inputs["params"]), "--prepared", str(inputs["prepared"]),
               "--scaler", str(inputs["scaler"]), "--model", str(host / "model.keras"),
               "--history", str(host / "training_curve.csv"),
               "--metrics", str(host / "train.json"), "--checkpoints", str(host / "ckpt"),
               "--weights-out", str(host / "weights")]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=base_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))  # fmt: skip
    outs = [p.communicate(timeout=HANG_S) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert [s["worker"] for s in summaries] == [0, 1]
    assert all(s["replicas"] == 2 and s["epochs"] == [3] for s in summaries)
    w0 = np.load(tmp_path / "host0/weights/worker_0.npz")
    w1 = np.load(tmp_path / "host1/weights/worker_1.npz")
    assert w0.files == w1.files and all(np.array_equal(w0[k], w1[k]) for k in w0.files)
    # The chief alone wrote the stage's outputs; the other host has only its scratch.
    chief = {p.name for p in (tmp_path / "host0").iterdir()}
    other = {p.name for p in (tmp_path / "host1").iterdir()}
    assert {"model.keras", "training_curve.csv", "train.json"} <= chief
    assert other == {"ckpt", "weights"}
    assert json.loads((tmp_path / "host0/train.json").read_text())["workers"] == 2
    # The chief's model is the weights both hosts ended with.
    from tasks.model.forecast import load_model

    model = load_model(tmp_path / "host0/model.keras")
    assert all(np.array_equal(a, w1[k]) for a, k in zip(model.get_weights(), w1.files,
                                                          strict=True))  # fmt: skip

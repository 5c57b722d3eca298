"""Resume after a fault: training killed with SIGKILL mid-run resumes from its backup (not from
epoch 0) and ends with the same weights and history as an uninterrupted run with the same seed:
two ensemble members, ReduceLROnPlateau cutting the rate and EarlyStopping counting patience
across the interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasks import safe_state
from tests.waits import HANG_S

ROOT = Path(__file__).resolve().parents[3]

RUN = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    sys.path.insert(0, {root!r})
    from tasks.features.prepare import prepare
    from tasks.model.train import train
    from tests.tasks.model.test_train import seasonal_frame, tiny_config

    cfg = tiny_config(epochs=12, ensemble=2, patience=8, lr_patience=2, learning_rate=0.02)
    prepared = prepare(seasonal_frame(), cfg)
    resumed = train(prepared, cfg, Path({ckpt!r}))
    out = {{"summary": resumed.summary, "history": resumed.history.to_dicts()}}
    if {compare}:  # the same training uninterrupted, from no backup, in this process
        fresh = train(prepared, cfg, Path({ckpt!r}) / "fresh")
        pairs = zip(resumed.model.get_weights(), fresh.model.get_weights(), strict=True)
        out["identical"] = all(np.array_equal(a, b) for a, b in pairs)
        out["fresh_history"] = fresh.history.to_dicts()
    print(json.dumps(out))
    """
)


def _script(ckpt: Path, compare: bool) -> list[str]:
    return [sys.executable, "-c", RUN.format(root=str(ROOT), ckpt=str(ckpt), compare=compare)]


ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


# The fault point after member 1's third epoch (tasks/faults.py): member 0 has finished, member 1
# has backed up epochs 1 and 2 and is killed before backing up the third.
KILL_AT = "train.member_1.epoch_end.3"


@pytest.mark.slow
def test_sigkill_mid_run_resumes_and_matches_an_uninterrupted_run(tmp_path: Path):
    ckpt = tmp_path / "checkpoints"
    marker = tmp_path / "killed-at"
    env = {**ENV, "FORECAST_KILL_AT": KILL_AT, "FORECAST_KILL_MARKER": str(marker)}
    killed = subprocess.run(_script(ckpt, False), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=HANG_S)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-4000:]
    assert marker.read_text().split()[0] == KILL_AT
    backup = next(ckpt.glob("backup/*"))
    assert (backup / "member_0.done.npz").exists()
    state = safe_state.load(backup / "member_1.state.npz")
    assert state["epoch"] == 1  # 0-based: epoch 2 is the last one backed up

    done = subprocess.run(_script(ckpt, True), cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=HANG_S)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    resumed_at = out["summary"]["resumed_at_epoch"]
    assert resumed_at[0] == 12  # member 0: loaded, finished before the kill
    assert resumed_at[1] == 2  # member 1: after its last backed-up epoch, not from zero
    assert out["identical"] is True
    assert out["history"] == out["fresh_history"]
    rates = [r["learning_rate"] for r in out["history"] if r["member"] == 1]
    assert min(rates) < rates[0]  # ReduceLROnPlateau acted, and its state survived the kill
    assert not (ckpt / "backup").exists()  # removed once every member finished


def test_a_backup_belongs_to_its_params_and_data():
    from tasks.features.prepare import prepare
    from tasks.model.train import fingerprint
    from tests.tasks.model.test_train import seasonal_frame, tiny_config

    cfg = tiny_config()
    prepared = prepare(seasonal_frame(), cfg)
    key = fingerprint(prepared, cfg)
    assert fingerprint(prepare(seasonal_frame(), cfg), cfg) == key
    assert fingerprint(prepared, tiny_config(resume=False)) == key  # resume itself is not part
    assert fingerprint(prepared, tiny_config(learning_rate=0.02)) != key
    assert fingerprint(prepare(seasonal_frame(seed=1), cfg), cfg) != key

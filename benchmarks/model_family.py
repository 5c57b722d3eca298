"""The model family on the bundled series (AirPassengers): a comparison, not a tuning.

Each variant is params.yaml's model and training settings with one change (cell, bidirectional,
attention, recursive mode), trained by tasks.model.train.train on 1949-1958 and scored on the
held-out test tail 1959-1960 (horizon 24) in passengers: RMSE, MAE, MASE, next to the naive and
seasonal naive forecasts. Nothing is selected on these numbers: the test tail is scored once per
variant, so they say how the variants compare on this one series, not which setting is best.

    python -m benchmarks.model_family [--ensemble 1] [--variants direct attention ...]

Each variant trains in its own subprocess. Writes benchmarks/results/model_family.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tasks.evaluation.baselines import BASELINES
from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "model_family.json"

VARIANTS = {
    "lstm direct (params.yaml)": {},
    "gru direct": {"cell": "gru"},
    "bidirectional lstm": {"bidirectional": True},
    "lstm + attention": {"attention": True},
    "lstm recursive": {"mode": "recursive"},
}


def worker(name: str, ensemble: int) -> dict:
    import numpy as np
    import yaml

    from tasks.config import parse_config
    from tasks.evaluation import metrics
    from tasks.features.prepare import prepare
    from tasks.ingest import read_source, validate
    from tasks.model.train import model_inputs, train

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"].update(VARIANTS[name])
    raw["training"]["ensemble"] = ensemble
    raw.setdefault("evaluate", {})["n_windows"] = 1  # the plain holdout: the last 24 months
    cfg = parse_config(raw)
    frame = validate(read_source(ROOT / cfg.data.path), cfg)
    prepared = prepare(frame, cfg)
    import tempfile

    with tempfile.TemporaryDirectory() as ckpt:
        started = time.perf_counter()
        result = train(prepared, cfg, Path(ckpt))
        seconds = time.perf_counter() - started
    x = model_inputs(prepared, prepared.test_starts, result.model)
    scaled = np.asarray(result.model.predict(x, verbose=0))
    lo, end, hi = int(prepared.offsets[0]), int(prepared.train_end[0]), int(prepared.offsets[1])
    insample, actual = prepared.raw[lo:end], prepared.raw[end:hi]
    m, h = cfg.data.season_length, cfg.forecast.horizon
    preds = {
        "model": prepared.to_original(0, scaled[0]),
        **{name: baseline(insample, h, m) for name, baseline in BASELINES.items()},
    }
    scores = {k: metrics.score(actual, p, insample, m) for k, p in preds.items()}
    return {
        "variant": name, "change": VARIANTS[name], "ensemble": ensemble,
        "params": result.model.count_params(), "epochs": result.summary["epochs"],
        "train_seconds": seconds, "scores": scores,
        "test_period": [str(prepared.timestamps[end])[:10], str(prepared.timestamps[hi - 1])[:10]],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ensemble", type=int, default=1, help="members per variant")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.ensemble)))
        return 0

    started = time.perf_counter()
    rows = []
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    head = ("variant", "RMSE", "MAE", "MASE", "params", "epochs", "train s")
    print("{:<28}{:>8}{:>8}{:>7}{:>8}{:>8}{:>9}".format(*head))
    for name in args.variants:
        cmd = [sys.executable, "-m", "benchmarks.model_family", "--worker", name,
               "--ensemble", str(args.ensemble)]  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(r)
        s = r["scores"]["model"]
        print(f"{name:<28}{s['rmse']:>8.1f}{s['mae']:>8.1f}{s['mase']:>7.2f}{r['params']:>8,}"
              f"{sum(r['epochs']):>8}{r['train_seconds']:>9.1f}", flush=True)  # fmt: skip
    base = rows[0]["scores"]
    for k in BASELINES:
        print(f"{k:<28}{base[k]['rmse']:>8.1f}{base[k]['mae']:>8.1f}{base[k]['mase']:>7.2f}")
    doc = {
        "benchmark": "model_family",
        "note": "a comparison on one series, not a tuning: each variant is scored once on the "
        "test tail 1959-1960 and nothing is chosen by these numbers",
        "series": "AirPassengers (data/raw/airpassengers.csv)",
        "units": "passengers (thousands); MASE scaled by the in-sample seasonal-naive error",
        "results": rows,
        "elapsed_s": time.perf_counter() - started,
    }
    write_json(args.out, doc)  # atomic, strict JSON (NaN -> null)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

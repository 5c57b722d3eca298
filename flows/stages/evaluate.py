"""evaluate: rolling-origin backtest of the LSTM and the baselines, conformal intervals, the
champion rescored on the same folds, and the gate's decision.

The champion (published/champion.keras + champion.json, written by publish) is read as state,
not declared as a DVC dependency: publish depends on this stage's gate.json, so a dependency on
publish's output would be a cycle. Its md5 goes into metrics/gate.json, so the decision still
says exactly which champion it was judged against.
"""

from __future__ import annotations

from prefect import flow as prefect_flow

from tasks import io, paths
from tasks.config import DEFAULT_PARAMS, Config, load_config
from tasks.errors import PipelineError
from tasks.gate import CHAMPION_META, CHAMPION_MODEL, decide
from tasks.intervals import INTERVALS
from tasks.prepare import Prepared

METRICS_FOLDS = "metrics/folds.json"


class ChampionUnreadable(PipelineError):
    """published/champion.keras exists but cannot be loaded."""


def load_champion(load_model):
    """The champion, or None before the first publish."""
    from tasks.evaluate import Champion

    if not CHAMPION_MODEL.exists():
        return None
    md5 = io.md5_file(CHAMPION_MODEL)
    meta = io.read_json(CHAMPION_META) if CHAMPION_META.exists() else None
    if meta is not None and meta.get("model_md5") != md5:
        # A publish interrupted between the two files: the model is the truth, its metadata
        # (training period) unknown; the comparison says so.
        meta = None
    try:
        model = load_model(CHAMPION_MODEL)
    except Exception as err:
        raise ChampionUnreadable(
            f"cannot load the champion {CHAMPION_MODEL} ({err}); restore it from the DVC cache "
            "(`dvc checkout publish`) or remove published/champion.* to judge this run on the "
            "value thresholds alone"
        ) from None
    return Champion(model=model, md5=md5, meta=meta, path=str(CHAMPION_MODEL))


def run(cfg: Config) -> dict:
    from tasks.backtest import build_folds, fold_models
    from tasks.evaluate import evaluate
    from tasks.forecast import load_model

    prepared = Prepared.load(paths.PREPARED, paths.SCALER)
    folds = build_folds(prepared, cfg)  # checks the fold geometry before any work
    models = fold_models(
        folds, cfg, lambda: load_model(paths.MODEL), paths.CHECKPOINTS / "backtest"
    )
    result = evaluate(folds, models, cfg, load_champion(load_model))
    decision = decide(result.scores, cfg.gate, result.comparison)
    # The model this decision is about: publish refuses to ship any other.
    decision["model_md5"] = io.md5_file(paths.MODEL)
    # Written only after everything above succeeded: a failure leaves the last outputs as they were.
    io.write_json(paths.METRICS_EVALUATE, result.scores)
    io.write_json(METRICS_FOLDS, result.folds)
    io.write_json(INTERVALS, result.calibration.to_json())
    for path, frame in result.plots.items():
        io.write_atomic(path, frame.write_csv)
    io.write_json(paths.METRICS_GATE, decision)
    return {"evaluate": result.scores, "gate": decision}


@prefect_flow(name="evaluate")
def flow(params: str = str(DEFAULT_PARAMS)) -> dict:
    return run(load_config(params))

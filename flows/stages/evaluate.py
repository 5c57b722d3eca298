"""evaluate: rolling-origin backtest of the LSTM and the baselines, conformal intervals, the
champion rescored on the same folds, and the gate's decision.

The champion (written by publish) is read as state, not declared as a DVC dependency: publish
depends on this stage's gate decision, so a dependency on publish's output would be a cycle. Its
md5 goes into metrics/gate.json, so the decision still says exactly which champion it was judged
against.
"""

from __future__ import annotations

from flows.stage import NO_RUN, Stage, StageContext
from tasks import io
from tasks.config import Config
from tasks.errors import PipelineError


class ChampionUnreadable(PipelineError):
    """The champion model exists but cannot be loaded."""


def load_champion(load_model):
    """The champion, or None before the first publish."""
    from tasks.evaluation.evaluate import Champion

    model_path, meta_path = STAGE.path("champion_model"), STAGE.path("champion_meta")
    if not model_path.exists():
        return None
    md5 = io.md5_file(model_path)
    meta = io.read_json(meta_path) if meta_path.exists() else None
    if meta is not None and meta.get("model_md5") != md5:
        # A publish interrupted between the two files: the model is the truth, its metadata
        # (training period) unknown; the comparison says so.
        meta = None
    try:
        model = load_model(model_path)
    except Exception as err:
        raise ChampionUnreadable(
            f"cannot load the champion {model_path} ({err}); restore it from the DVC cache "
            f"(`dvc checkout publish`) or remove {model_path} and {meta_path} to judge this run "
            "on the value thresholds alone"
        ) from None
    return Champion(model=model, md5=md5, meta=meta, path=str(model_path))


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    from tasks.evaluation.distributed import engine

    # The per-series fits on the engine `execution` names (a Dask scheduler that does not
    # answer stops the stage here, before any work).
    with engine(cfg):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: StageContext) -> dict:
    import polars as pl

    from tasks.config import auto
    from tasks.config.auto import is_auto
    from tasks.evaluation.backtest import build_folds, fold_models
    from tasks.evaluation.evaluate import covariates_used, evaluate
    from tasks.evaluation.gate import decide
    from tasks.evaluation.selection import require_folds
    from tasks.evaluation.short import choose_all, every_series, short_series, values_of
    from tasks.features.prepare import Prepared
    from tasks.model.forecast import load_model
    from tasks.model.refit import fit_schedule, judged_epoch, refit
    from tasks.progress import run_logger

    p = STAGE.path
    require_folds(cfg)  # the per-series choice needs older folds: stop before any work
    prepared = Prepared.load(p("prepared"), p("scaler"))
    # `auto` params from the whole series, once: every fold, fit and refit below uses these.
    chosen = auto.resolution(cfg, prepared.lengths)
    run_logger("forecast.evaluate").info("evaluate %s", chosen.describe())
    validated = pl.read_parquet(p("validated"), columns=["series_id", "timestamp", "value"])
    cfg = candidates_from(chosen.config, validated)
    if is_auto(chosen.config.evaluate.candidates):
        chosen.chosen["evaluate.candidates"] = list(cfg.evaluate.candidates)
        run_logger("forecast.evaluate").info(
            "evaluate auto: evaluate.candidates %s", ", ".join(cfg.evaluate.candidates)
        )
    folds = build_folds(prepared, cfg)  # checks the fold geometry before any work
    models = fold_models(folds, cfg, lambda: load_model(p("model")), p("checkpoints") / "backtest")
    result = evaluate(folds, models, cfg, load_champion(load_model))
    result.scores["auto"] = chosen.record()
    # The series too short for the LSTM (prepare kept them out): backtested on the folds they
    # have, published by a candidate, counted in the selection (tasks/evaluation/short.py).
    short = choose_all(values_of(short_series(validated, prepared.series_ids)), cfg)
    result.selection.add_short(short)
    # The gate judges every series scored on the latest fold, the short ones too.
    result.scores["every_series"] = every_series(*result.fold0, short)
    result.scores["selection"] = result.selection.summary(len(folds))
    if cfg.data.covariates.any:  # which inputs these scores are of (the UI's metrics artifact)
        result.scores["covariates"] = covariates_used(cfg)
    decision = decide(result.scores, cfg.gate, result.comparison)
    # The model this decision is about: publish refuses to ship any other.
    decision["model_md5"] = io.md5_file(p("model"))
    # The backtest judged the procedure; what ships is refit on the full history (after the
    # scoring: it has seen every value, so nothing could score it out of sample).
    # Epochs the size of the train stage's (tasks/model/refit.py "Epoch size"): it fits the
    # earliest fold, build_folds' last (fold 0 with evaluate.refit; backtest.training_fold).
    fitted = prepared if cfg.evaluate.refit else folds[-1]
    epoch = judged_epoch(fitted.train_starts.size, cfg.training.windows_per_epoch)
    shipped = refit(prepared, cfg, fit_schedule(pl.read_csv(p("history"))), epoch)
    images = backtest_images(result.plots)  # drawn before anything is written
    # Written only after everything above succeeded: a failure leaves the last outputs as they were.
    io.write_json(p("metrics_evaluate"), result.scores)
    io.write_json(p("metrics_folds"), result.folds)
    io.write_atomic(p("model_full"), shipped.model.save)
    decision["shipped_model"] = {
        "md5": io.md5_file(p("model_full")),
        **{k: v for k, v in shipped.summary.items() if k != "trained_through"},
        "trained_through_last": max(shipped.summary["trained_through"].values()),
    }
    io.write_json(p("intervals"), result.calibration.to_json())
    io.write_json(p("selection"), result.selection.to_json())
    for key, frame in result.plots.items():
        io.write_atomic(p(key), frame.write_csv)
    for key, png in images.items():
        io.write_atomic(p(key), lambda tmp, png=png: tmp.write_bytes(png))
    io.write_json(p("metrics_gate"), decision)
    return {"evaluate": result.scores, "gate": decision}


def candidates_from(cfg: Config, validated) -> Config:
    """`evaluate.candidates: auto` from every series (short ones too) and their shares of
    zeros (tasks/config/auto.py)."""
    import polars as pl

    from tasks.config import auto

    zeros = validated.group_by("series_id").agg((pl.col("value") == 0).mean().alias("z"))
    return auto.with_candidates(cfg, zeros.height, zeros["z"].to_list())


def backtest_images(plots: dict) -> dict[str, bytes]:
    """The DVC image plots of the backtest: every fold for the largest series, and the error
    per horizon step (tasks/charts.py)."""
    from tasks import charts
    from tasks.evaluation.evaluate import BACKTEST_FORECAST, HORIZON_ERRORS

    backtest = plots[BACKTEST_FORECAST]
    series = charts.pick_series(backtest.rename({"actual": "value"}), top=charts.BACKTEST_TOP)
    return {
        "plot_backtest_png": charts.backtest_chart(
            backtest, series, "Backtest per fold (0 = latest origin): actual vs LSTM"
        ),
        "plot_horizon_png": charts.horizon_chart(
            plots[HORIZON_ERRORS], "Backtest MASE per horizon step (mean over folds and series)"
        ),
    }


def ui_artifacts(cfg: Config, header: str) -> None:
    from flows import artifacts

    artifacts.metrics_artifact(STAGE.path("metrics_evaluate"), STAGE.path("metrics_gate"), header)


STAGE = Stage(
    name="evaluate",
    run=run,
    reads=("validated", "prepared", "scaler", "model", "history"),
    writes=(
        "model_full",
        "intervals",
        "selection",
        "plot_test_forecast",
        "plot_backtest_forecast",
        "plot_fold_errors",
        "plot_horizon_errors",
        "plot_backtest_png",
        "plot_horizon_png",
        "metrics_evaluate",
        "metrics_folds",
        "metrics_gate",
    ),
    state=("champion_model", "champion_meta"),
    scratch=("checkpoints",),
    params=(
        "data.season_length",
        "data.covariates",
        "forecast.horizon",
        "prepare",
        "model",
        "training",
        "evaluate",
        "gate",
    ),
    ui_artifacts=ui_artifacts,
    description="backtest against naive baselines and the champion; the publish gate",
)

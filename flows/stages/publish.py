"""publish: if the gate passed, forecast the next horizon with its prediction intervals, write it
with its lineage to the publish targets, and keep the published model as the champion for the
next gate."""

from __future__ import annotations

import logging
import shutil
import struct
import zlib
from collections.abc import Callable

from flows.git import head_commit
from flows.stage import NO_RUN, Stage, StageContext
from tasks import catalog, io
from tasks.config import Config
from tasks.errors import GateFailed
from tasks.monitoring.gate import check_drift
from tasks.textfmt import clip

log = logging.getLogger("forecast")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# One white pixel: the image plot's content when the chart could not be drawn (DVC wants the out).
BLANK_PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\x00\xff"))
    + _png_chunk(b"IEND", b"")
)


def check_gate() -> dict:
    gate, model = STAGE.path("metrics_gate"), STAGE.path("model")
    decision = io.read_json(gate)
    if not decision.get("passed"):
        reasons = "; ".join(decision.get("reasons", [])) or f"see {gate}"
        raise GateFailed(
            f"NOT PUBLISHED: the evaluation gate failed ({reasons}); "
            "the last published forecasts and the champion are unchanged"
        )
    judged, model_md5 = decision.get("model_md5"), io.md5_file(model)
    if judged is not None and judged != model_md5:
        raise GateFailed(
            f"NOT PUBLISHED: {gate} judged model {judged[:12]}, but "
            f"{model} is {model_md5[:12]}: rerun evaluate (dvc repro)"
        )
    # The shipped model is the one evaluate refit after judging the procedure, no other.
    full = STAGE.path("model_full")
    shipped, full_md5 = (decision.get("shipped_model") or {}).get("md5"), io.md5_file(full)
    if shipped != full_md5:
        raise GateFailed(
            f"NOT PUBLISHED: {gate} was decided with shipped model {str(shipped)[:12]}, but "
            f"{full} is {full_md5[:12]}: rerun evaluate (dvc repro)"
        )
    return decision


def stage_champion(pub, meta: dict) -> None:
    """The shipped model (refit through the last observation) and its metadata as the champion,
    in the publish's transaction: the champion is always the model whose forecasts the store and
    export hold."""
    model = STAGE.path("model_full")
    pub.write(STAGE.path("champion_model"), lambda tmp: shutil.copyfile(model, tmp))
    pub.write(STAGE.path("champion_meta"), lambda tmp: io.write_json_to(tmp, meta))


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    from tasks.evaluation.distributed import engine

    # The per-series fits on the engine `execution` names (a Dask scheduler that does not
    # answer stops the stage here, before any work).
    with engine(cfg):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: StageContext) -> dict:
    import polars as pl

    from tasks.evaluation.intervals import Calibration
    from tasks.evaluation.selection import load_choices, load_reasons
    from tasks.evaluation.short import short_series
    from tasks.features.prepare import Prepared
    from tasks.features.scaling import SeriesTransform
    from tasks.model.forecast import load_model
    from tasks.publishing import targets
    from tasks.publishing.forecasts import (
        champion_covariates,
        champion_meta,
        future_forecasts,
        short_forecasts,
        trained_through,
    )
    from tasks.publishing.lineage import collect_lineage
    from tasks.publishing.model_id import model_id
    from tasks.publishing.transaction import recover

    p = STAGE.path
    recover(p("publish_journal"))  # a publish killed mid-rename is completed, gate or not
    check_gate()
    check_drift(io.read_json(p("metrics_monitor")))  # monitor.drift_gate: fail
    prepared = Prepared.load(p("prepared"), p("scaler"))
    calibration = Calibration.from_json(io.read_json(p("intervals")))
    # Per series the LSTM or a baseline (tasks/evaluation/selection.py), each with its own
    # intervals.
    selected = io.read_json(p("selection"))
    choices, calibrations = load_choices(selected)
    reasons = load_reasons(selected)
    model = load_model(p("model_full"))  # refit through each series' last observation
    forecasts = future_forecasts(
        prepared, model, cfg.data.frequency, calibration, choices, calibrations, reasons
    )
    # The series too short for the LSTM, by the candidate evaluate chose for each
    # (tasks/evaluation/short.py); not in `prepared`, read from the validated data.
    validated = pl.read_parquet(p("validated"), columns=["series_id", "timestamp", "value"])
    short = short_series(validated, prepared.series_ids)
    if short:
        transform = SeriesTransform(
            prepared.transform.transform_name, prepared.transform.scaler_name
        )
        extra = short_forecasts(
            short,
            prepared.geometry.horizon,
            prepared.season_length,
            cfg.data.frequency,
            transform,
            choices,
            calibrations,
            reasons,
        )
        forecasts = pl.concat([forecasts, extra.select(forecasts.columns)])
    chart = chart_or_blank(lambda: forecast_image(forecasts))  # before any target is written
    # The shipped model trained through each series' last observation (tasks/model/refit.py).
    through = trained_through(prepared, full_history=True)
    last = sorted(set(through.values()))
    lineage = collect_lineage(
        data=p("validated"),
        params=cfg.source,
        model=p("model_full"),
        flow_run_id=ctx.flow_run_id,
        commit=head_commit(),
        trained_through=last[-1],  # per series: champion.json
        covariates=champion_covariates(prepared),  # which the shipped model read, by kind
    )
    # The run is keyed by the weights and config: the same weights saved again are one run.
    lineage["model_id"] = model_id(p("model_full"))
    used = champion_covariates(prepared)
    # Series ingest quarantined keep their last published forecasts, marked stale.
    quarantined = pl.read_parquet(p("quarantined"), columns=["series_id"])["series_id"]
    models = list(forecasts.unique("series_id")["model"])
    summary: dict = {}

    def champion_and_summary(pub) -> None:
        record = pub.summaries[cfg.publish.targets[0]]
        meta = champion_meta(
            prepared, lineage["model_md5"], record["run_key"], lineage["published_at"]
        )
        stage_champion(pub, meta | {"trained_through": through, "choices": choices})
        pub.write(p("plot_forecast_png"), lambda tmp: tmp.write_bytes(chart))
        # Per target what it wrote; the run key (the system of record's) names this publish.
        summary.update(
            run_key=record["run_key"],
            targets=pub.summaries,
            champion=lineage["model_md5"],
            # The last timestamp the shipped model trained on (earliest and latest over series;
            # per series in published/champion.json).
            trained_through={"first": last[0], "last": last[-1]},
            models={name: models.count(name) for name in sorted(set(models))},  # series each
            covariates=used,
        )
        # The backtest figures of what this run publishes (the per-series mixture, scored on the
        # latest fold): the monitor's expected error.
        scores = io.read_json(p("metrics_evaluate"))
        summary["backtest"] = scores.get("published") or scores.get("lstm")
        pub.write(p("metrics_publish"), lambda tmp: io.write_json_to(tmp, summary))

    targets.publish(
        forecasts,
        lineage,
        cfg,
        p("publish_journal"),
        keep=tuple(quarantined.to_list()),
        also=champion_and_summary,
    )
    return summary


def chart_or_blank(draw: Callable[[], bytes]) -> bytes:
    """draw(), or BLANK_PNG with a warning when it fails: the chart is a picture of what is
    published, never a reason not to publish it."""
    try:
        return draw()
    except Exception as err:  # any chart failure: matplotlib, a date it cannot hold, the data
        log.warning(
            "publish: the forecast chart could not be drawn (%s: %s); publishing without it "
            "(%s holds a blank image)",
            type(err).__name__,
            clip(err, 300),
            STAGE.path("plot_forecast_png"),
        )
        return BLANK_PNG


def forecast_image(forecasts) -> bytes:
    """The DVC image plot: history and forecast with intervals of the largest series."""
    import polars as pl

    from tasks import charts

    series, history = charts.chart_history(pl.scan_parquet(STAGE.path("validated")))
    title = "Published forecast, 80/95 % intervals"
    return charts.forecast_chart(history, forecasts, series, title)


def target_outputs(cfg: Config) -> tuple[str, ...]:
    """The catalog keys the chosen publish targets write (their DVC outs)."""
    from tasks.publishing import targets

    return tuple(e.key for name in cfg.publish.targets for e in targets.load(name).outputs_for(cfg))


def ui_artifacts(cfg: Config, header: str) -> None:
    from flows import artifacts

    export = catalog.path("export", cfg)
    if "parquet" in cfg.publish.targets:
        artifacts.published_artifact(export)
        artifacts.chart_artifact(STAGE.path("validated"), export, f"Forecast {header}")


STAGE = Stage(
    name="publish",
    run=run,
    reads=(
        "validated",
        "quarantined",
        "prepared",
        "scaler",
        "model",
        "model_full",
        "intervals",
        "selection",
        "metrics_gate",
        "metrics_evaluate",
        "metrics_monitor",
    ),
    writes=("champion_model", "champion_meta", "plot_forecast_png", "metrics_publish"),
    scratch=("publish_journal",),
    writes_for=target_outputs,
    plugins=lambda cfg: tuple(f"tasks.publishing.targets.{name}" for name in cfg.publish.targets),
    params=("data.frequency", "publish"),
    ui_artifacts=ui_artifacts,
    description="forecasts in original units with lineage, to the publish targets",
)

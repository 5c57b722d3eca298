"""The artifact catalog: the one home of every path the pipeline reads or writes.

Every file a stage reads or writes is an entry here, looked up by key (`catalog.path("model")`);
no other module spells a path. Stage declarations (flows/stages/*.py) name these keys, and
dvc.yaml is generated from them (flows/dvcgen.py), so the deps and outs DVC tracks are the paths
the code uses.

An entry whose location a user may choose is bound to a params key (`param`): its path is read
from the config (`catalog.path("store", cfg)`), and dvc.yaml refers to it as `${publish.store}`.

A stage that brings a new artifact declares its entry itself (`Stage.declares`); the registry
adds it here when the stages load, so adding a stage needs no edit of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tasks.config import Config

# source: read only, from outside the pipeline; out: a DVC-cached output; metric/plot: small
# files kept in git (DVC metrics/plots, cache: false); scratch: neither versioned nor a
# dependency of anything (checkpoints, locks, logs).
Kind = Literal["source", "out", "metric", "plot", "scratch"]


@dataclass(frozen=True)
class Entry:
    key: str
    path: str
    kind: Kind
    description: str
    # Dotted params key holding the path (users choose it); `path` is then its default.
    param: str | None = None
    # DVC must not delete it before its stage runs: a stage that fails (bad data, failed gate)
    # leaves the last good one in place.
    persist: bool = False

    @property
    def dvc_path(self) -> str:
        return f"${{{self.param}}}" if self.param else self.path


ENTRIES: tuple[Entry, ...] = (
    Entry("raw", "data/raw/airpassengers.csv", "source", "raw source", param="data.path"),
    Entry("validated", "data/validated/series.parquet", "out", "validated frame", persist=True),
    # Read only when data.future_path is set (flows/stage.py: Stage.optional).
    Entry(
        "future_raw",
        "data/raw/future.csv",
        "source",
        "future covariates for the horizon after each series (data.covariates.future)",
        param="data.future_path",
    ),
    Entry(
        "validated_future",
        "data/validated/future.parquet",
        "out",
        "the future covariates of the horizon steps, validated (empty without any)",
        persist=True,
    ),
    Entry("metrics_ingest", "metrics/ingest.json", "metric", "series and rows validated"),
    Entry(
        "quarantined",
        "data/validated/quarantined.parquet",
        "out",
        "every series ingest set aside, with its checks (publish keeps their forecasts, stale)",
        persist=True,
    ),
    Entry("prepared", "data/prepared/arrays.npz", "out", "values, index, split geometry"),
    Entry("scaler", "models/scaler.npz", "out", "per-series transforms fitted on training"),
    Entry("model", "models/model.keras", "out", "the trained (ensemble) model"),
    Entry(
        "model_full",
        "models/model_full.keras",
        "out",
        "the shipped model: refit on each series' full history (tasks/model/refit.py)",
    ),
    Entry("history", "plots/training_curve.csv", "plot", "loss per epoch"),
    Entry("metrics_train", "metrics/train.json", "metric", "training summary"),
    Entry("checkpoints", "checkpoints", "scratch", "best-weights checkpoints and resume state"),
    Entry("intervals", "models/intervals.json", "out", "conformal interval calibration"),
    Entry(
        "selection",
        "models/selection.json",
        "out",
        "per series the model to publish (LSTM or a baseline), baselines' interval calibration",
    ),
    Entry("metrics_evaluate", "metrics/evaluate.json", "metric", "backtest scores per model"),
    Entry("metrics_folds", "metrics/folds.json", "metric", "backtest scores per fold"),
    Entry("metrics_gate", "metrics/gate.json", "metric", "the gate's decision and its numbers"),
    Entry("plot_test_forecast", "plots/test_forecast.csv", "plot", "latest fold vs actuals"),
    Entry("plot_backtest_forecast", "plots/backtest_forecast.csv", "plot", "every fold"),
    Entry("plot_fold_errors", "plots/fold_errors.csv", "plot", "RMSE per fold and model"),
    Entry("plot_horizon_errors", "plots/horizon_errors.csv", "plot", "MASE per horizon step"),
    # Image plots (tasks/charts.py), shown by `dvc plots show` beside the CSV ones.
    Entry("plot_backtest_png", "plots/backtest.png", "plot", "backtest chart, a row per fold"),
    Entry("plot_horizon_png", "plots/horizon_errors.png", "plot", "MASE per horizon step chart"),
    Entry(
        "store",
        "published/forecasts.sqlite",
        "out",
        "forecast store: every run, current view",
        param="publish.store",
        persist=True,
    ),
    # With a server store (publish.url) the database is not a file DVC can hash: publish writes
    # this manifest of what it wrote instead, as its DVC out (tasks/publishing/store.py: manifest).
    Entry(
        "publish_manifest",
        "published/manifest.json",
        "out",
        "a server store's last publish: run key, rows, content md5 (no credentials)",
        persist=True,
    ),
    Entry(
        "export",
        "published/forecasts.parquet",
        "out",
        "current forecasts as Parquet",
        param="publish.export",
        persist=True,
    ),
    Entry(
        "champion_model", "published/champion.keras", "out", "model published last", persist=True
    ),
    Entry("champion_meta", "published/champion.json", "out", "its training period", persist=True),
    Entry("metrics_publish", "metrics/publish.json", "metric", "what the last publish wrote"),
    Entry("plot_forecast_png", "plots/forecast.png", "plot", "history, forecast, 80/95 % bands"),
    Entry("metrics_monitor", "metrics/monitor.json", "metric", "realized accuracy, drift, alerts"),
    Entry("plot_monitor", "plots/monitor_errors.csv", "plot", "realized error per target time"),
    # Publish's and the monitor's: both write into the store through the same journal.
    Entry(
        "publish_journal",
        "published/.publish-journal.json",
        "scratch",
        "the files a publish in progress is renaming (tasks/publishing/transaction.py)",
    ),
    # Rewritten when a pipeline run ends and by `forecast report` (flows/report.py); not versioned.
    Entry("report", "reports/run.html", "scratch", "HTML report of the last run"),
    Entry(
        "run_log",
        "logs/pipeline-runs.jsonl",
        "scratch",
        "one line per pipeline run",
        param="orchestration.run_log",
    ),
    Entry("pipeline_lock", ".dvc/tmp/forecast-pipeline.lock", "scratch", "one run at a time"),
)

CATALOG: dict[str, Entry] = {e.key: e for e in ENTRIES}


class CatalogError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def entry(key: str) -> Entry:
    try:
        return CATALOG[key]
    except KeyError:
        raise CatalogError(
            f"no artifact {key!r} in the catalog (tasks/catalog.py); known: {', '.join(CATALOG)}"
        ) from None


def _param(cfg: Config, dotted: str):
    value = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def path(key: str, cfg: Config | None = None) -> Path:
    """Where artifact `key` lives. Entries bound to a params key need the config: without it
    they would silently fall back to the default location."""
    e = entry(key)
    if e.param is None:
        return Path(e.path)
    if cfg is None:
        raise CatalogError(f"artifact {key!r} lives where {e.param} says: pass the config")
    value = _param(cfg, e.param)
    if value is None:
        raise CatalogError(f"artifact {key!r}: {e.param} is not set (null) in the params")
    return Path(value)


def is_set(key: str, cfg: Config) -> bool:
    """Whether artifact `key` exists in this configuration: an entry whose params key is null
    (data.future_path without future covariates) is absent."""
    e = entry(key)
    return e.param is None or _param(cfg, e.param) is not None


def register(new: Entry) -> None:
    """Add an entry declared by a stage (Stage.declares). Same entry again: no-op."""
    known = CATALOG.get(new.key)
    if known == new:
        return
    if known is not None:
        raise CatalogError(f"artifact {new.key!r} is declared twice with different definitions")
    clash = [e.key for e in CATALOG.values() if e.path == new.path]
    if clash:
        raise CatalogError(f"artifact {new.key!r}: path {new.path} is already {clash[0]!r}")
    CATALOG[new.key] = new

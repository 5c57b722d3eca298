"""The sections of params.yaml, one pydantic model each, every knob with its default.

Cross-section rules and the loading live in tasks/config/__init__.py (`Config`, `load_config`).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)

from tasks.config.choices import CANDIDATES, CELLS, MODES, PRECISIONS, one_of

DEFAULT_PARAMS = Path("params.yaml")


def inside_repository(value: str, key: str = "") -> str:
    """`value` if it is a relative path that stays inside the repository (every stage runs at the
    repository root); else why not. DVC versions only what is inside the repository: an output
    outside it would be written while dvc.lock records the untouched in-repo file."""
    path = PurePosixPath(value.replace("\\", "/"))
    if not value.strip() or path.is_absolute() or ".." in path.parts:
        raise ValueError(
            f"{key + ' ' if key else ''}must be a path inside the repository (relative, without "
            f"'..'), got {value!r}"
        )
    return value


# No params string is longer: paths, URLs, names, cron lines. A 50 MB string was accepted and
# re-parsed by every failure hook (reliability round 3).
MAX_STRING = 4096


def _auto_int(minimum: int, maximum: int | None = None, nullable: bool = False):
    """A whole number in [minimum, maximum] or `auto` (tasks/config/auto.py resolves it from the
    data); with `nullable` also null. One plain validator, so a bad value gives one message
    naming the key (a union type would report each member's failure on its own line)."""

    def check(value):
        if value == "auto" or (nullable and value is None):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            null = ", null" if nullable else ""
            raise ValueError(f"Input should be a valid integer{null} or 'auto', got {value!r}")
        if value < minimum:
            raise ValueError(f"Input should be greater than or equal to {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"Input should be less than or equal to {maximum}")
        return value

    return PlainValidator(check)


AUTO = Literal["auto"]


class _Section(BaseModel):
    # strict: a quoted number (`epochs: '2'`) is an error, not silently coerced.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_max_length=MAX_STRING)


class ForecastConfig(_Section):
    horizon: int = Field(default=24, ge=1)


class PrepareConfig(_Section):
    # auto (here and below): derived from the data by tasks/config/auto.py (docs/decisions.md).
    lookback: Annotated[int | AUTO, _auto_int(1)] = "auto"
    # Last steps of each series' training part whose windows judge early stopping.
    validation_steps: Annotated[int | AUTO, _auto_int(1)] = "auto"
    # "log" needs strictly positive values: ingest checks that when it is selected. "asinh"
    # takes any value (zeros, negatives); "auto" picks per series: log where every value is
    # positive, else asinh (tasks/features/scaling.py).
    transform: Literal["none", "log", "asinh", "auto"] = "auto"
    scaler: Literal["standard", "minmax", "robust"] = "standard"


class ModelConfig(_Section):
    # A key of tasks.config.choices.CELLS (the one registry of cells).
    cell: str = "lstm"
    units: tuple[int, ...] = Field(default=(32, 16), min_length=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    bidirectional: bool = False
    # Predict the change over the last season instead of the level (seasonal-naive residual).
    seasonal_residual: bool = True
    # Feed each window relative to its last value (level-free shapes; log-ratios after a log).
    relative_inputs: bool = True
    # Dot-product attention over the last recurrent layer's outputs, queried by its last step.
    attention: bool = False
    # direct: one head predicts all horizon steps; recursive: a one-step head fed back.
    mode: str = "direct"
    # > 0: a learnt vector of this size per series (one global model over many series).
    series_embedding: int = Field(default=0, ge=0, le=512)

    @field_validator("cell")
    @classmethod
    def _cell(cls, value: str) -> str:
        return one_of(value, CELLS)

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        return one_of(value, MODES)

    @model_validator(mode="after")
    def _units(self) -> ModelConfig:
        if any(u < 1 for u in self.units):
            raise ValueError(f"every entry of model.units must be >= 1, got {list(self.units)}")
        return self


class TrainingConfig(_Section):
    # auto: epochs, batch size, windows per epoch and ensemble scale with the number of training
    # windows so one training is a bounded number of optimizer steps (tasks/config/auto.py).
    epochs: Annotated[int | AUTO, _auto_int(1)] = "auto"
    batch_size: Annotated[int | AUTO, _auto_int(1)] = "auto"
    learning_rate: float = Field(default=3e-3, gt=0.0, le=1.0)
    patience: int = Field(default=10, ge=1)
    lr_patience: int = Field(default=5, ge=1)
    lr_factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    min_learning_rate: float = Field(default=1e-5, gt=0.0)
    clipnorm: float = Field(default=1.0, gt=0.0)
    seed: int = Field(default=42, ge=0)
    # Logical CPU devices to split the CPU into when no GPU is present (MirroredStrategy replicas).
    replicas: int = Field(default=1, ge=1, le=64)
    # Models trained with seeds seed, seed+1, ...; their forecasts are averaged.
    ensemble: Annotated[int | AUTO, _auto_int(1, 32)] = "auto"
    # Optimizer steps of one training, every member together: what `auto` epochs and ensemble
    # fill (tasks/config/auto.py Budget), the knob that trades training time for accuracy.
    step_budget: int = Field(default=2048, ge=64, le=1_000_000)
    # mase: each series' squared errors weighted by 1 / its MASE scale squared
    # (Prepared.mase_weights), so the loss judges series as MASE does; none: plain MSE.
    loss_weights: str = "none"
    # The training loss in the scaled space: mse, or mae (the error MASE averages; with
    # loss_weights mase each series' errors weigh 1 / its MASE scale, not its square).
    loss: Literal["mse", "mae"] = "mse"
    # Every series weighs the same in the loss whatever its number of windows (each window's
    # weight divided by its series' count; Prepared.mase_weights `balance`).
    series_balance: bool = False
    # Recurrent layers in half precision (float32 variables, head and output): GPU speed-up.
    # auto: mixed_bfloat16 on GPUs that compute in it (compute capability >= 8.0),
    # mixed_float16 (with loss scaling) on older ones (>= 7.0), float32 otherwise and on CPUs.
    mixed_precision: str = "auto"
    # Windows each epoch visits, sampled without replacement (a new sample each epoch, the same
    # for the same seed); null: all. At 10k series an epoch of every window takes minutes, so
    # early stopping and the learning-rate schedule would act on few, late validations.
    windows_per_epoch: Annotated[int | None | AUTO, _auto_int(1, nullable=True)] = "auto"
    # Processes training together (MultiWorkerMirroredStrategy): `python -m flows.multiworker`.
    workers: int = Field(default=1, ge=1, le=16)
    # Back up each epoch to checkpoints/backup/ and resume from it after a crash.
    resume: bool = True
    # One CPU device still under MirroredStrategy (the product's contract); false uses TF's
    # default strategy (the saving per epoch: benchmarks/results/training.json).
    mirrored: bool = True

    @field_validator("mixed_precision")
    @classmethod
    def _precision(cls, value: str) -> str:
        return one_of(value, ("auto", *PRECISIONS))

    @field_validator("loss_weights")
    @classmethod
    def _loss_weights(cls, value: str) -> str:
        return one_of(value, ("none", "mase"))


class GateConfig(_Section):
    """What the gate (tasks/evaluation/gate.py) asks of the published mixture on the latest fold
    before it publishes. By default: skill over seasonal naive, overall and on most series, and
    no regression against the champion; the absolute levels are off (null), because what MASE a
    data set allows is a property of the data (issue 22: on 366 monthly series every method
    scored above 1.3).
    null turns a check off."""

    # Mean MASE over series must be below seasonal naive's on the same fold times this (1.0:
    # beat it; 0.9: by 10 %).
    mase_ratio_below: float | None = Field(default=1.0, gt=0.0)
    # At most this share of the series may score a worse MASE than seasonal naive's on that fold
    # (a series published by seasonal naive ties it, which is not worse). 0.5: it does at least as
    # well as seasonal naive on most series, so a mean carried by a few series cannot pass.
    max_worse_series_fraction: float | None = Field(default=0.5, ge=0.0, le=1.0)
    # Absolute level: mean MASE at most this (null: off).
    max_mase: float | None = Field(default=None, gt=0.0)
    # RMSE must beat seasonal naive's by at least this fraction (0.05 = 5 % lower; null: off).
    min_improvement_over_seasonal_naive: float | None = Field(default=None, ge=-1.0, lt=1.0)
    # Change thresholds against the champion (the model published last, rescored on the current
    # folds): how much worse than the champion the challenger's `metric` may be (lower is better).
    # null disables a threshold; with no champion yet only the value thresholds above apply.
    # The names of tasks.evaluation.metrics.METRICS (not imported: every stage reads this module; a
    # test keeps the two equal).
    metric: Literal["mase", "rmse", "mae", "smape"] = "mase"
    max_abs_change: float | None = Field(default=None, ge=0.0)
    max_rel_change: float | None = Field(default=0.1, ge=0.0)
    # Per-series model choice (tasks/evaluation/selection.py): at most this share of series may be
    # published by a baseline instead of the LSTM (1.0: no limit; 0.0: every series the LSTM).
    max_fallback_fraction: float = Field(default=1.0, ge=0.0, le=1.0)


class EvaluateConfig(_Section):
    """Rolling-origin backtest (tasks/evaluation/backtest.py) and conformal intervals
    (tasks/evaluation/intervals.py).

    Fold k (0 = the latest) forecasts the `forecast.horizon` steps after origin
    N - horizon - k * step of each series. The code default (one fold) is the plain holdout;
    params.yaml sets the pipeline's folds.
    """

    n_windows: int = Field(default=1, ge=1, le=100)
    step: Annotated[int | AUTO, _auto_int(1)] = "auto"
    # True: a model per fold, trained on that fold's training part (fold 0 reuses the train
    # stage's model). False: one model, trained at the earliest origin, scores every fold.
    refit: bool = False
    # Prediction-interval levels in percent; the store has columns for these two.
    levels: tuple[Literal[80, 95], ...] = Field(default=(80, 95), min_length=1)
    # What the per-series choice (tasks/evaluation/selection.py) may publish a series with where the
    # LSTM does not beat it on the older folds: baselines and statistical models
    # (tasks/evaluation/statistical.py, scored on every fold only when listed here). The code
    # default is the three baselines; params.yaml adds the statistical ones. Order breaks ties: the
    # earlier one is published.
    # croston, adida, tsb: intermittent demand (series with many zeros).
    # mean_<parts>: combinations, the mean of those models' forecasts (25 of them:
    # tasks/config/choices.py, tasks/evaluation/combinations.py).
    # auto: from the data (tasks/config/auto.py `candidates`).
    candidates: (
        tuple[
            Literal[CANDIDATES],  # tasks/config/choices.py: baselines, statistical, combinations
            ...,
        ]
        | AUTO
    ) = Field(default=("naive", "seasonal_naive", "drift"), min_length=1)
    # A series keeps its own best model on the older folds only where that beats the overall
    # best model by more than this fraction there (tasks/evaluation/shrinkage.py); 0: its own best.
    choice_margin: float = Field(default=0.0, ge=0.0, lt=1.0)
    # What a series' own best gives way to: best, the model best over all series on the older
    # folds, combination or not; combination: the combination (of those listed) best there, or
    # the best model when none is listed (tasks/evaluation/shrinkage.py).
    shrink_toward: Literal["best", "combination"] = "best"

    @model_validator(mode="after")
    def _levels(self) -> EvaluateConfig:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"evaluate.levels holds duplicates: {list(self.levels)}")
        if not isinstance(self.candidates, str) and len(set(self.candidates)) != len(
            self.candidates
        ):
            raise ValueError(f"evaluate.candidates holds duplicates: {list(self.candidates)}")
        return self


# publish.url: `${VAR}` names an environment variable (tasks/publishing/db.py expands it at run
# time).
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_SENTINEL = "FORECASTVAR"
# Query parameters that carry a password (libpq's `password`, `sslpassword`; common spellings).
PASSWORD_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword", "pass"})


def check_url_template(template: str) -> str:
    """Config-time checks of publish.url (no environment needed): a URL once its variables are
    filled in, and no literal password (a password is a whole ${VAR}, or absent: .pgpass)."""
    if ENV_VAR.fullmatch(template):
        return template  # the whole URL from the environment
    probe = ENV_VAR.sub(_URL_SENTINEL, template)
    from sqlalchemy.engine import make_url

    try:
        url = make_url(probe)
    except Exception as err:
        raise ValueError(f"not a database URL ({err})") from None
    literal_in_query = [
        k
        for k, v in url.query.items()
        if k.lower() in PASSWORD_KEYS
        and any(x != _URL_SENTINEL for x in ((v,) if isinstance(v, str) else v))
    ]
    if (url.password is not None and str(url.password) != _URL_SENTINEL) or literal_in_query:
        raise ValueError(
            "holds a password: put it in an environment variable and write ${VAR} in its place "
            "(credentials never go in params.yaml)"
        )
    return template


class PublishConfig(_Section):
    # Where published forecasts go, in order (tasks/publishing/targets/: one module each); the first
    # is the system of record, the others export its current view.
    targets: tuple[str, ...] = Field(default=("sqlite", "parquet"), min_length=1)
    store: str = "published/forecasts.sqlite"
    export: str = "published/forecasts.parquet"
    # The store's database (tasks/publishing/db.py): null = the SQLite file `store`; else a
    # SQLAlchemy URL whose password (if any) is an environment variable written ${VAR}, expanded at
    # run time.
    url: str | None = None

    @field_validator("store", "export")
    @classmethod
    def _inside(cls, value: str) -> str:
        return inside_repository(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url_template(value)

    @model_validator(mode="after")
    def _targets(self) -> PublishConfig:
        from tasks import plugins

        known = plugins.names("tasks.publishing.targets")
        unknown = [t for t in self.targets if t not in known]
        if unknown:
            raise ValueError(
                f"publish.targets: unknown target(s) {', '.join(unknown)}; "
                f"one of {', '.join(known)}"
            )
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"publish.targets holds duplicates: {list(self.targets)}")
        return self


class MonitorConfig(_Section):
    """Realized accuracy of published forecasts and input drift (tasks/monitoring/analysis.py)."""

    # Alert (Prefect event forecast.accuracy.degraded) when a run's realized `metric` exceeds
    # its backtest figure by more than this fraction (0.5: 50 % worse than the backtest said).
    max_degradation: float = Field(default=0.5, ge=0.0)
    metric: Literal["mase", "rmse", "smape"] = "mase"
    # Drift: the newest `drift_window` steps of a series (null: forecast.horizon) against the
    # rest of its history, as seasonal differences; a two-sample KS test at `drift_alpha`.
    drift_window: int | None = Field(default=None, ge=2)
    drift_alpha: float = Field(default=0.01, gt=0.0, lt=1.0)
    # warn: drifted series are reported, publishing goes on; fail: drift blocks publishing.
    drift_gate: Literal["warn", "fail"] = "warn"


class OrchestrationConfig(_Section):
    """How production runs are scheduled, serialised, retried and versioned (flows/deploy.py,
    flows/pipeline.py, flows/versioning.py). No stage reads it: changing it reruns nothing."""

    deployment: str = Field(default="scheduled", pattern=r"^[A-Za-z0-9_.-]+$")
    cron: str = Field(default="0 6 * * *", min_length=9)
    timezone: str = "UTC"
    # A run that arrives while one is running: "enqueue" waits for it, "cancel" skips the new one.
    on_overlap: Literal["enqueue", "cancel"] = "enqueue"
    # Reading the source: transient failures retry this often, waiting delay * 2**attempt seconds.
    source_retries: int = Field(default=3, ge=0, le=10)
    source_retry_delay_s: float = Field(default=2.0, ge=0.0)
    # Version each successful deployment run: git commit + tag of dvc.lock/metrics, dvc push.
    version_runs: bool = True
    remote: str = Field(default="local", pattern=r"^[A-Za-z0-9_.-]+$")
    tag_prefix: str = Field(default="forecast-run", pattern=r"^[A-Za-z0-9_.-]+$")
    run_log: str = "logs/pipeline-runs.jsonl"

    @field_validator("run_log")
    @classmethod
    def _inside(cls, value: str) -> str:
        return inside_repository(value)

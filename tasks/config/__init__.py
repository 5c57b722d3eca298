"""params.yaml read once into a typed, validated config.

Every knob of the pipeline lives here with its default. Unknown keys, wrong types and impossible
values fail before any stage does work, with the dotted key in the message
(``params.yaml: training.epochs: Input should be greater than or equal to 1``).

The sections are in `sections`, the registries of the model's choices (cells, modes, precisions)
in `choices`; this module joins them into `Config` and reads the file. Shared by every package:
it imports nothing of tasks/ but tasks.errors and tasks.plugins.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import PrivateAttr, ValidationError, model_validator

from tasks.config import auto
from tasks.config.data import ColumnsConfig, CovariatesConfig, DataConfig
from tasks.config.execution import ExecutionConfig
from tasks.config.sections import (
    DEFAULT_PARAMS,
    ENV_VAR,
    EvaluateConfig,
    ForecastConfig,
    GateConfig,
    ModelConfig,
    MonitorConfig,
    OrchestrationConfig,
    PrepareConfig,
    PublishConfig,
    TrainingConfig,
    _Section,
    check_url_template,
    inside_repository,
)
from tasks.errors import ConfigError

# The fewest observations a published series may have: the naive candidate repeats the last one.
MIN_HISTORY = 1

__all__ = [
    "DEFAULT_PARAMS",
    "ENV_VAR",
    "ColumnsConfig",
    "Config",
    "CovariatesConfig",
    "DataConfig",
    "EvaluateConfig",
    "ExecutionConfig",
    "MIN_HISTORY",
    "ForecastConfig",
    "GateConfig",
    "ModelConfig",
    "MonitorConfig",
    "OrchestrationConfig",
    "PrepareConfig",
    "PublishConfig",
    "TrainingConfig",
    "check_url_template",
    "inside_repository",
    "load_config",
    "parse_config",
]


class Config(_Section):
    data: DataConfig = DataConfig()
    forecast: ForecastConfig = ForecastConfig()
    prepare: PrepareConfig = PrepareConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    gate: GateConfig = GateConfig()
    publish: PublishConfig = PublishConfig()
    monitor: MonitorConfig = MonitorConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    execution: ExecutionConfig = ExecutionConfig()
    # The file this config was read from (lineage hashes it).
    _source: Path = PrivateAttr(default=DEFAULT_PARAMS)

    @property
    def source(self) -> Path:
        return self._source

    @model_validator(mode="after")
    def _cross(self) -> Config:
        if self.prepare.transform == "log" and (
            self.data.min_value is None or self.data.min_value < 0
        ):
            # (auto needs no bound: it takes the log only of series whose values are all
            # positive, asinh of the others, which takes any value.)
            raise ValueError(
                "prepare.transform 'log' needs data.min_value >= 0 (values must be positive); "
                "prepare.transform: auto takes the log only where a series is positive"
            )
        if self.data.covariates.any and self.model.mode == "recursive":
            raise ValueError(
                "model.mode 'recursive' does not read covariates (data.covariates: "
                f"{', '.join(self.data.covariates.declared)}): its fed-back window has no "
                "covariate values for the steps it predicts; use model.mode: direct"
            )
        return self

    @property
    def min_history(self) -> int:
        """Steps a series needs to be published: one, what the simplest candidate (naive, the
        last value) forecasts from. Shorter-than-the-LSTM series are forecast by the candidates
        their history fits (tasks/evaluation/short.py), not quarantined."""
        return MIN_HISTORY

    @property
    def lstm_history(self) -> int:
        """Steps a series needs to be an LSTM series (trained on, and a candidate): one training
        window, the validation tail and the test horizon in the earliest backtest fold, whose
        origin is (n_windows - 1) * step steps earlier.

        Of a resolved config (tasks/config/auto.py: `resolve`) exactly that; where lookback,
        validation_steps or step are still `auto`, their data-free targets."""
        lookback, validation, step = auto.static_geometry(self)
        folds = (self.evaluate.n_windows - 1) * step
        return auto.history_need(lookback, validation, self.forecast.horizon, folds)


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "params"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see params.yaml for the known keys)"
        lines.append(f"{source}: {key}: {msg}")
    return "invalid params:\n  " + "\n  ".join(lines)


def _lists_as_tuples(value):
    """YAML has lists, the config tuples (frozen): strict validation takes only tuples."""
    if isinstance(value, dict):
        return {k: _lists_as_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_lists_as_tuples(v) for v in value)
    return value


# A params file is a few KB; this bounds the parse (a 50 MB file parsed for minutes).
MAX_PARAMS_BYTES = 1024 * 1024


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently; DVC rejects such a file with a traceback) and any alias (`*name`): aliases expand
    before any key is checked, and nested ones ("billion laughs") grew past 1.8 GB."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(
                f"line {mark.line + 1}: a YAML alias (*name) is not allowed in params: write "
                "the value out"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"key {key!r} appears twice in one mapping (lines {seen[key] + 1} and "
                    f"{key_node.start_mark.line + 1}): keep one"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_config(raw: dict, source: str = "params.yaml") -> Config:
    """Validate a params mapping; raises ConfigError naming each bad key."""
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        raise ConfigError(f"{source}: expected a mapping at the top level, got {kind}")
    try:
        return Config.model_validate(_lists_as_tuples(raw))
    except ValidationError as err:
        raise ConfigError(_format(err, source)) from None


def load_config(path: str | Path = DEFAULT_PARAMS) -> Config:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PARAMS_BYTES:
            raise ConfigError(
                f"{path} is {size / 1024**2:.1f} MiB: a params file is a few KB (at most "
                f"{MAX_PARAMS_BYTES // 1024**2} MiB); is it the right file?"
            )
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read params file {path}: {err.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  a SafeLoader subclass
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is None:
        # The code defaults differ from the shipped file's (e.g. 1 backtest fold, not 3): an
        # empty file is far more likely a mistake than a wish for them.
        raise ConfigError(
            f"{path} is empty: give at least one section (an empty mapping `{{}}` runs on the "
            "code defaults of tasks/config/)"
        )
    cfg = parse_config(raw, source=str(path))
    cfg._source = path
    return cfg

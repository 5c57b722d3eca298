"""params.yaml read once into a typed, validated config.

Every knob of the pipeline lives here with its default. Unknown keys, wrong types and impossible
values fail before any stage does work, with the dotted key in the message
(``params.yaml: training.epochs: Input should be greater than 0``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from tasks.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    path: str = "data/raw/airpassengers.csv"
    # Polars duration string of the expected spacing between timestamps ("1mo", "1d", "1h").
    frequency: str = Field(default="1mo", pattern=r"^[1-9]\d*(ns|us|ms|s|m|h|d|w|mo|q|y)$")
    season_length: int = Field(default=12, ge=1)
    # What to do with missing timestamps inside a series: stop ("error") or fill them.
    fill_gaps: Literal["error", "forward", "interpolate"] = "error"
    min_value: float | None = 0.0
    max_value: float | None = None

    @model_validator(mode="after")
    def _range(self) -> DataConfig:
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value >= self.max_value
        ):
            raise ValueError(
                f"data.min_value ({self.min_value}) must be below data.max_value ({self.max_value})"
            )
        return self


class ForecastConfig(_Section):
    horizon: int = Field(default=24, ge=1)


class PrepareConfig(_Section):
    lookback: int = Field(default=36, ge=1)
    # Last steps of each series' training part whose windows judge early stopping.
    validation_steps: int = Field(default=12, ge=1)
    # "log" needs strictly positive values: ingest checks that when it is selected.
    transform: Literal["none", "log"] = "log"
    scaler: Literal["standard", "minmax", "robust"] = "standard"


class ModelConfig(_Section):
    cell: Literal["lstm", "gru"] = "lstm"
    units: tuple[int, ...] = Field(default=(32, 16), min_length=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    bidirectional: bool = False
    # Predict the change over the last season instead of the level (seasonal-naive residual).
    seasonal_residual: bool = True

    @model_validator(mode="after")
    def _units(self) -> ModelConfig:
        if any(u < 1 for u in self.units):
            raise ValueError(f"every entry of model.units must be >= 1, got {list(self.units)}")
        return self


class TrainingConfig(_Section):
    epochs: int = Field(default=300, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    patience: int = Field(default=30, ge=1)
    lr_patience: int = Field(default=10, ge=1)
    lr_factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    min_learning_rate: float = Field(default=1e-5, gt=0.0)
    clipnorm: float = Field(default=1.0, gt=0.0)
    seed: int = Field(default=42, ge=0)
    # Logical CPU devices to split the CPU into when no GPU is present (MirroredStrategy replicas).
    replicas: int = Field(default=1, ge=1, le=64)
    # Models trained with seeds seed, seed+1, ...; their forecasts are averaged.
    ensemble: int = Field(default=3, ge=1, le=32)


class GateConfig(_Section):
    # Publish only when the LSTM's mean MASE is at most this ...
    max_mase: float = Field(default=1.0, gt=0.0)
    # ... and its RMSE beats seasonal naive by at least this fraction (0.05 = 5 % lower).
    min_improvement_over_seasonal_naive: float = Field(default=0.0, ge=-1.0, lt=1.0)


class PublishConfig(_Section):
    store: str = "published/forecasts.sqlite"
    export: str = "published/forecasts.parquet"


class Config(_Section):
    data: DataConfig = DataConfig()
    forecast: ForecastConfig = ForecastConfig()
    prepare: PrepareConfig = PrepareConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    gate: GateConfig = GateConfig()
    publish: PublishConfig = PublishConfig()
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
            raise ValueError(
                "prepare.transform 'log' needs data.min_value >= 0 (values must be positive)"
            )
        return self

    @property
    def min_history(self) -> int:
        """Steps a series needs: one training window, the validation tail and the test horizon."""
        return self.prepare.lookback + self.forecast.horizon * 2 + self.prepare.validation_steps


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "params"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see params.yaml for the known keys)"
        lines.append(f"{source}: {key}: {msg}")
    return "invalid params:\n  " + "\n  ".join(lines)


def parse_config(raw: dict, source: str = "params.yaml") -> Config:
    """Validate a params mapping; raises ConfigError naming each bad key."""
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        raise ConfigError(f"{source}: expected a mapping at the top level, got {kind}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err, source)) from None


def load_config(path: str | Path = DEFAULT_PARAMS) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read params file {path}: {err.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    cfg = parse_config(raw, source=str(path))
    cfg._source = path
    return cfg

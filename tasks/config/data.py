"""The `data:` section of params.yaml: where the source is, how its columns are named
(`columns`), its frequency, the covariates, and what to do with bad series.

May import: tasks.config.sections (the base section, the path rule), tasks.plugins.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tasks.config.sections import _Section, inside_repository

# Names the long format itself uses (tasks/columns.py, tasks/ingest/schema.py FILLED): never
# covariates.
_RESERVED = ("series_id", "timestamp", "value", "filled")


class CovariatesConfig(_Section):
    """Extra columns of the source the model reads (tasks/features/covariates.py). Every column
    beyond the long format's own must be listed in exactly one of these; ingest refuses the others
    by name.

    past: observed up to the forecast origin only (they join the recurrent inputs);
    future: known ahead for the horizon (calendar, planned promotions, weather forecasts): their
    horizon values come from data.future_path; static: one value per series (numeric or text).
    """

    past: tuple[str, ...] = ()
    future: tuple[str, ...] = ()
    static: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _names(self) -> CovariatesConfig:
        seen: dict[str, str] = {}
        for kind in ("past", "future", "static"):
            for name in getattr(self, kind):
                if not name.strip():
                    raise ValueError(f"data.covariates.{kind} holds an empty column name")
                if name in _RESERVED:
                    raise ValueError(
                        f"data.covariates.{kind}: {name!r} is a column of the long format itself, "
                        "not a covariate"
                    )
                if name in seen:
                    raise ValueError(
                        f"column {name!r} is declared twice (data.covariates.{seen[name]} and "
                        f"data.covariates.{kind}): a covariate is one kind"
                    )
                seen[name] = kind
        return self

    @property
    def declared(self) -> tuple[str, ...]:
        return (*self.past, *self.future, *self.static)

    @property
    def any(self) -> bool:
        return bool(self.declared)


class ColumnsConfig(_Section):
    """Which source column is which (source names; the pipeline renames them to series_id,
    timestamp and value on reading). `series_id: null`, or the default `series_id` absent from
    the source, reads the file as one series, named after data.path's file name."""

    series_id: str | None = "series_id"
    timestamp: str = "timestamp"
    value: str = "value"

    @model_validator(mode="after")
    def _names(self) -> ColumnsConfig:
        named = {k: v for k, v in self.mapping().items() if v is not None}
        for key, name in named.items():
            if not name.strip():
                raise ValueError(f"data.columns.{key} is empty: name the source column")
        if len(set(named.values())) != len(named):
            raise ValueError(
                "data.columns names one source column twice "
                f"({', '.join(f'{k}: {v}' for k, v in named.items())}): each is its own column"
            )
        return self

    def mapping(self) -> dict[str, str | None]:
        """Long-format name -> source column name (None: no id column)."""
        return {"series_id": self.series_id, "timestamp": self.timestamp, "value": self.value}


class DataConfig(_Section):
    path: str = "data/raw/airpassengers.csv"
    # How to read `path` (tasks/ingest/sources/: one module each); "auto" picks by the path.
    source: str = "auto"
    # `path` outside the repository (e.g. a shared mount): only when asked for. DVC then tracks
    # the source by its hash all the same, but `flows.runs restore` cannot bring it back.
    allow_outside_repo: bool = False
    # Polars duration string of the expected spacing between timestamps ("1mo", "1d", "1h").
    frequency: str = Field(default="1mo", pattern=r"^[1-9]\d*(ns|us|ms|s|m|h|d|w|mo|q|y)$")
    season_length: int = Field(default=12, ge=1)
    # What to do with missing timestamps inside a series: stop ("error") or fill them.
    fill_gaps: Literal["error", "forward", "interpolate"] = "error"
    # Naive timestamps are calendar times in this zone; ones with a UTC offset are converted
    # to it (tasks/ingest/read.py). A source mixing both is refused.
    timezone: str = "UTC"
    # With filling on: at most this fraction of a series' steps may be filled (else it fails).
    max_fill_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    min_value: float | None = 0.0
    max_value: float | None = None
    # A problem of one series (too short, gaps, bad values, constant, off its grid) quarantines
    # that series ("skip": the others go on, it is listed in metrics/ingest.json) or stops the
    # run ("fail"). Problems of the whole source (columns, types, duplicate keys) always stop it.
    on_bad_series: Literal["skip", "fail"] = "skip"
    # Series ids that differ only by case or surrounding whitespace (`a`, `A`, `a `): a warning
    # at ingest ("warn"), or the run stops ("refuse"). Either way they are separate series.
    ambiguous_ids: Literal["warn", "refuse"] = "warn"
    # Rows dated more than one data.frequency step after the clock at ingest (a skewed clock,
    # a day/month swap): a warning naming them ("warn"), or the run stops ("refuse").
    future_timestamps: Literal["warn", "refuse"] = "warn"
    # With "skip": more than this fraction of the series quarantined still stops the run (that
    # many broken series usually means a wrong param or a broken export, not bad series).
    max_bad_series_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    # The source's names of the id, time and value columns (see ColumnsConfig), e.g.
    # {series_id: store, timestamp: date, value: sales}.
    columns: ColumnsConfig = ColumnsConfig()
    # Covariate columns of the source, by kind (see CovariatesConfig); none: values only.
    covariates: CovariatesConfig = CovariatesConfig()
    # The future covariates' values for the forecast.horizon steps after each series' last
    # observation (same long format: series_id, timestamp and each data.covariates.future
    # column). Needed exactly when future covariates are declared.
    future_path: str | None = None

    @model_validator(mode="after")
    def _future(self) -> DataConfig:
        future = self.covariates.future
        if future and self.future_path is None:
            raise ValueError(
                f"data.covariates.future ({', '.join(future)}) needs data.future_path: a file with "
                "their values for the forecast.horizon steps after each series' last timestamp"
            )
        if self.future_path is not None and not future:
            raise ValueError(
                "data.future_path is set but data.covariates.future is empty: declare the future "
                "covariate columns it holds, or remove data.future_path"
            )
        if self.future_path is not None and not self.allow_outside_repo:
            try:
                inside_repository(self.future_path, "data.future_path")
            except ValueError as err:
                raise ValueError(f"{err}; set data.allow_outside_repo: true to read it") from None
        return self

    @model_validator(mode="after")
    def _covariate_names(self) -> DataConfig:
        mapped = {v: k for k, v in self.columns.mapping().items() if v is not None}
        for name in self.covariates.declared:
            if name in mapped:
                raise ValueError(f"column {name!r} is data.columns.{mapped[name]}, not a covariate")
        return self

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

    @model_validator(mode="after")
    def _path(self) -> DataConfig:
        if not self.allow_outside_repo:
            try:
                inside_repository(self.path, "data.path")
            except ValueError as err:
                raise ValueError(f"{err}; set data.allow_outside_repo: true to read it") from None
        return self

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as UTC or Europe/Berlin)"
            ) from None
        return value

    @model_validator(mode="after")
    def _source(self) -> DataConfig:
        from tasks import plugins

        known = plugins.names("tasks.ingest.sources")
        if self.source != "auto" and self.source not in known:
            raise ValueError(
                f"data.source: unknown source {self.source!r}; auto or one of {', '.join(known)}"
            )
        return self

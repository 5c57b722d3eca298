"""What the model is: one typed spec, and the registries of its choices. Free of Keras imports.

`ModelSpec` is everything `tasks.model.network.build_model` (and the recursive layer) needs, built
from the typed config by `ModelSpec.from_config`. The registries of choices (`CELLS`, `MODES`,
`PRECISIONS`) live in tasks/config/choices.py, so the config validates them without this package;
they are re-exported here for the model code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.config import auto
from tasks.config.choices import CELLS, MODES, PRECISIONS, Cell, one_of  # noqa: F401  re-exported

if TYPE_CHECKING:
    from tasks.config import Config


@dataclass(frozen=True)
class ModelSpec:
    """The model's architecture (see `tasks.model.network.build_model`). Defaults: the code's
    defaults, which keep the recurrent layers cuDNN-eligible."""

    lookback: int = 36
    horizon: int = 24
    n_features: int = 1  # value + covariate channels of the window; an embedding adds the index
    # Future-known covariates read for each horizon step (a second input, (horizon, n_future)),
    # and static covariate features per series (a third, (n_static,)); tasks/features/covariates.py.
    n_future: int = 0
    n_static: int = 0
    cell: str = "lstm"  # a key of CELLS
    units: tuple[int, ...] = (32, 16)
    dropout: float = 0.1
    bidirectional: bool = False
    seasonal_residual: bool = True
    season_length: int = 12
    relative_inputs: bool = False
    attention: bool = False
    mode: str = "direct"  # one of MODES
    n_series: int = 0  # rows of the series-embedding table
    embedding_dim: int = 0  # > 0: a learnt vector of this size per series
    precision: str = "float32"  # one of PRECISIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; one of {sorted(CELLS)}")
        if not self.units:
            raise ValueError("units needs at least one entry")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; one of {list(MODES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; one of {list(PRECISIONS)}")
        if self.mode == "recursive" and (self.n_future or self.n_static):
            # (The params refuse any covariate with recursive mode: tasks/config/.)
            raise ValueError(
                "model.mode 'recursive' does not read future or static covariates: use "
                "model.mode: direct"
            )
        if self.embedding_dim and self.n_series < 1:
            raise ValueError("a series embedding needs n_series >= 1")
        if self.seasonal_residual and self.lookback < self.season_length:
            # The message SeasonalBase gives, before anything is built.
            raise ValueError(
                f"lookback ({self.lookback}) is shorter than season_length "
                f"({self.season_length}): the seasonal residual needs a full season in the "
                "input window"
            )

    @property
    def channels(self) -> int:
        """Input channels: the values, plus the series index with a series embedding."""
        return self.n_features + (1 if self.embedding_dim else 0)

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        n_features: int = 1,
        n_future: int = 0,
        n_static: int = 0,
        n_series: int = 0,
        lookback: int | None = None,
        horizon: int | None = None,
        season_length: int | None = None,
    ) -> ModelSpec:
        """The spec `cfg` describes. `lookback`, `horizon` and `season_length` default to the
        config's (prepare.lookback, forecast.horizon, data.season_length; an `auto` lookback
        its data-free target, tasks/config/auto.py); pass the prepared data's own when building
        for it."""
        m = cfg.model
        if lookback is None:
            lookback = auto.static_geometry(cfg)[0]
        return cls(
            lookback=lookback,
            horizon=cfg.forecast.horizon if horizon is None else horizon,
            n_features=n_features,
            n_future=n_future,
            n_static=n_static,
            cell=m.cell,
            units=tuple(m.units),
            dropout=m.dropout,
            bidirectional=m.bidirectional,
            seasonal_residual=m.seasonal_residual,
            season_length=cfg.data.season_length if season_length is None else season_length,
            relative_inputs=m.relative_inputs,
            attention=m.attention,
            mode=m.mode,
            n_series=n_series,
            embedding_dim=m.series_embedding,
            precision=resolve_precision(cfg.training.mixed_precision),
        )


# ------------------------------------------------------------------------------ precision
def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """(major, minor) of every local GPU; [] on a CPU-only machine or the tensorflow-cpu wheel."""
    import tensorflow as tf  # here, not at the top: this module is imported by every stage

    caps = []
    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        caps.append(tuple(cc) if cc else (0, 0))
    return caps


def auto_precision(capabilities: list[tuple[int, int]]) -> str:
    """training.mixed_precision `auto`: the fastest policy every GPU computes natively.

    bfloat16 (Ampere, compute capability 8.0, and later) keeps float32's exponent range, so it
    needs no loss scaling; float16 (Volta/Turing, 7.x: tensor cores) gets a LossScaleOptimizer
    (tasks/model/train.py). No GPU, or an older one: float32.
    """
    if not capabilities:
        return "float32"
    lowest = min(capabilities)
    if lowest >= (8, 0):
        return "mixed_bfloat16"
    if lowest >= (7, 0):
        return "mixed_float16"
    return "float32"


def resolve_precision(choice: str) -> str:
    """The policy to build with: `choice`, or for `auto` the one this machine's GPUs support."""
    return auto_precision(gpu_compute_capabilities()) if choice == "auto" else choice

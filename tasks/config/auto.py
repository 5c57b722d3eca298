"""`auto` params resolved from the data: one pure rule that every stage applies alike.

`prepare.lookback`, `prepare.validation_steps`, `evaluate.step`, `training.batch_size`,
`training.windows_per_epoch`, `training.epochs` and `training.ensemble` accept `auto` (the
default). `resolve(cfg, lengths)` returns the config with each `auto` replaced by a number derived
from `data.season_length`, `forecast.horizon`, `evaluate.n_windows` and the series lengths; an
explicit number is kept. The rule and its reasons: docs/decisions.md, "Defaults derived from the
data".

Every stage resolves with the lengths of the whole series (prepare from the validated frame, train
and evaluate from the prepared offsets: the same numbers), never with a backtest fold's cut
lengths, so prepare, train and evaluate agree. Resolving a resolved config changes nothing.

Shared (tasks/config/): ingest, features, model and evaluation all read it; it imports nothing of
tasks/ at run time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

from tasks.config import choices

if TYPE_CHECKING:
    from tasks.config import Config

AUTO = "auto"

# The keys that accept `auto`, in the order they are resolved (later ones use earlier results).
KEYS = (
    "evaluate.step",
    "prepare.validation_steps",
    "prepare.lookback",
    "training.batch_size",
    "training.windows_per_epoch",
    "training.epochs",
    "training.ensemble",
)


def is_auto(value: object) -> bool:
    return isinstance(value, str) and value == AUTO


# ---------------------------------------------------------------- geometry (no data needed)
def tail_steps(season_length: int, horizon: int) -> int:
    """`prepare.validation_steps` and `evaluate.step`: one season, but at least half a horizon
    (a yearly series' season of 1 would give folds 1 step apart: nearly the same test set) and at
    most one horizon (a weekly season of 168 hours would eat the history)."""
    return min(max(season_length, math.ceil(horizon / 2)), horizon)


def lookback_target(season_length: int, horizon: int) -> int:
    """Two seasons (the seasonal residual reads the last one, relative inputs compare it with the
    one before), and at least 1.5 horizons of context for a long direct forecast."""
    return max(2 * season_length, math.ceil(1.5 * horizon))


def lookback_floor(season_length: int, seasonal_residual: bool) -> int:
    """The shortest input window the model takes: a season with the seasonal residual (the
    network refuses less, tasks/model/spec.py), else 2 steps."""
    return max(season_length if seasonal_residual else 1, 2)


def history_need(lookback: int, validation_steps: int, horizon: int, folds: int) -> int:
    """Steps a series needs for the LSTM (Config.lstm_history): a training window (lookback +
    horizon), the validation tail, the test horizon, and the earlier backtest origins."""
    return lookback + 2 * horizon + validation_steps + folds


def train_windows(lengths: Sequence[int], lookback: int, validation_steps: int, horizon: int):
    """Training windows of the train stage's split (tasks/features/prepare.py: a window's target
    ends by N - horizon - validation_steps), summed over series."""
    width = lookback + horizon
    return sum(max(0, int(n) - horizon - validation_steps - width + 1) for n in lengths)


def static_geometry(cfg: Config) -> tuple[int, int, int]:
    """(lookback, validation_steps, step) without data: `auto` at its data-free target, before the
    cap by the median series. The most the rule can ask for, so Config.lstm_history of an
    unresolved config is at least a resolved one's."""
    season, horizon = cfg.data.season_length, cfg.forecast.horizon
    tail = tail_steps(season, horizon)
    p, e = cfg.prepare, cfg.evaluate
    lookback = lookback_target(season, horizon) if is_auto(p.lookback) else p.lookback
    validation = tail if is_auto(p.validation_steps) else p.validation_steps
    step = tail if is_auto(e.step) else e.step
    return lookback, validation, step


# ---------------------------------------------------------------- the rule
@dataclass(frozen=True)
class Budget:
    """What bounds training time. On CPU an optimizer step of the default network costs about
    the same from batch 16 to 256 (benchmarks/results/training.json: 18 ms at 16, 21 ms at 256),
    so the step count, not the window count, sets the time: the batch grows with the windows,
    an epoch is at most `max_steps_per_epoch` steps, and one training (every member) at most
    about `steps` steps."""

    steps: int = 2048  # optimizer steps of one training, all ensemble members together
    steps_per_pass: int = 128  # batch: the smallest power of two passing every window in this
    min_batch: int = 16
    max_batch: int = 512
    max_steps_per_epoch: int = 128  # beyond: windows_per_epoch samples that many batches
    min_epochs: int = 10
    max_epochs: int = 100
    max_members: int = 3


DEFAULT_BUDGET = Budget()


def _pow2_at_least(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(x))) if x > 1 else 1


def _clamp(x: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, x))


@dataclass(frozen=True)
class Resolution:
    config: Config  # every `auto` replaced by its number
    chosen: dict[str, int | None]  # the keys that were `auto` -> their value
    basis: dict[str, float | int]  # what the rule read: series, median length, windows, ...

    def record(self) -> dict:
        """What metrics/train.json and metrics/evaluate.json record under "auto"."""
        return {"chosen": self.chosen, "basis": self.basis}

    def describe(self) -> str:
        """One log line: `auto: prepare.lookback 36, ... (1 series, median length 144, ...)`."""
        chosen = ", ".join(f"{k} {v}" for k, v in self.chosen.items()) or "nothing (all explicit)"
        basis = ", ".join(f"{k} {v:g}" for k, v in self.basis.items())
        return f"auto: {chosen} ({basis})"


def resolution(cfg: Config, lengths: Sequence[int], budget: Budget | None = None) -> Resolution:
    """Resolve every `auto` of `cfg` for series of these `lengths` (whole series, every step
    observed; see the module docstring for why never a fold's cut lengths)."""
    lengths = [int(n) for n in lengths]
    season, horizon = cfg.data.season_length, cfg.forecast.horizon
    p, t, e = cfg.prepare, cfg.training, cfg.evaluate
    if budget is None:  # the config's training.step_budget; the other bounds as Budget's
        budget = dataclasses.replace(DEFAULT_BUDGET, steps=t.step_budget)
    chosen: dict[str, int | None] = {}

    tail = tail_steps(season, horizon)
    step = tail if is_auto(e.step) else e.step
    validation = tail if is_auto(p.validation_steps) else p.validation_steps
    folds = (e.n_windows - 1) * step
    mid = median(lengths) if lengths else 0
    if is_auto(p.lookback):
        # The target, shortened to what the median series holds beside the validation tail, the
        # test horizon and the folds (shorter series fall to the other candidates), never below
        # what the network takes.
        room = int(mid) - history_need(0, validation, horizon, folds)
        target = lookback_target(season, horizon)
        lookback = max(lookback_floor(season, cfg.model.seasonal_residual), min(target, room))
    else:
        lookback = p.lookback
    windows = train_windows(lengths, lookback, validation, horizon)

    if is_auto(t.batch_size):
        want = _pow2_at_least(windows / budget.steps_per_pass)
        batch = _clamp(want, budget.min_batch, budget.max_batch)
    else:
        batch = t.batch_size
    if is_auto(t.windows_per_epoch):
        cap = budget.max_steps_per_epoch * batch
        per_epoch = cap if windows > cap else None  # None: every window, every epoch
    else:
        per_epoch = t.windows_per_epoch
    visited = windows if per_epoch is None else min(windows, per_epoch)
    steps = max(1, math.ceil(visited / batch))
    if is_auto(t.epochs):
        epochs = _clamp(budget.steps // steps, budget.min_epochs, budget.max_epochs)
    else:
        epochs = t.epochs
    if is_auto(t.ensemble):
        members = _clamp(budget.steps // (epochs * steps), 1, budget.max_members)
    else:
        members = t.ensemble

    values = {
        "evaluate.step": step,
        "prepare.validation_steps": validation,
        "prepare.lookback": lookback,
        "training.batch_size": batch,
        "training.windows_per_epoch": per_epoch,
        "training.epochs": epochs,
        "training.ensemble": members,
    }
    sections = {"prepare": p, "training": t, "evaluate": e}
    updates: dict[str, dict] = {}
    for key in KEYS:
        section, name = key.split(".")
        if is_auto(getattr(sections[section], name)):
            chosen[key] = values[key]
            updates.setdefault(section, {})[name] = values[key]
    resolved = cfg.model_copy(
        update={s: sections[s].model_copy(update=u) for s, u in updates.items()}
    )
    basis = {
        "series": len(lengths),
        "median_length": mid,
        "season_length": season,
        "horizon": horizon,
        "train_windows": windows,
        "steps_per_epoch": steps,
    }
    return Resolution(config=resolved, chosen=chosen, basis=basis)


def resolve(cfg: Config, lengths: Sequence[int], budget: Budget | None = None) -> Config:
    """`cfg` with every `auto` replaced (see `resolution`); a resolved config comes back as is."""
    if not any(is_auto(get(cfg, key)) for key in KEYS):
        return cfg
    return resolution(cfg, lengths, budget).config


def get(cfg: Config, key: str):
    """The value of a dotted key of KEYS (`training.epochs`)."""
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


# ---------------------------------------------------------------- evaluate.candidates: auto
BASELINES = choices.BASELINE_CANDIDATES
# statsforecast AutoTheta and AutoETS: on M3 (the tuning set) they carry the mixture on every
# frequency once there are series enough to choose among them (docs/decisions.md); a single
# series' two older folds are too little evidence (the bundled series' folds pick Theta, which
# then loses to the LSTM by far on the latest fold).
STATISTICAL = ("theta", "ets")
# Four of their combinations (tasks/evaluation/combinations.py): the means of ETS and Theta, and
# of ETS, Theta and AutoCES (a tenth of an ETS fit), each with and without the LSTM. Under the
# pooled choice (evaluate.choice_margin 0.99 toward the best combination) the CES means lowered
# the published MASE on M3's tuning split; listing the whole family of 25, or the four with drift
# added, did not: more options for two older folds to choose among moved some frequencies up
# and others down (docs/decisions.md "The choice pools").
COMBINATIONS = (
    "mean_ets_theta",
    "mean_lstm_ets_theta",
    "mean_ets_theta_ces",
    "mean_lstm_ets_theta_ces",
)
MIN_SERIES_STATISTICAL = 20
# ADIDA and TSB (tasks/evaluation/statistical.py): for intermittent demand, added when any
# series has at least this share of zeros.
INTERMITTENT = ("adida", "tsb")
INTERMITTENT_ZERO_SHARE = 0.3


def candidates(n_series: int, zero_shares: Sequence[float]) -> tuple[str, ...]:
    """`evaluate.candidates: auto` for `n_series` series (all of them, short ones included)
    whose shares of zero values are `zero_shares`."""
    names = BASELINES
    if n_series >= MIN_SERIES_STATISTICAL:
        names += STATISTICAL + COMBINATIONS
    if any(z >= INTERMITTENT_ZERO_SHARE for z in zero_shares):
        names += INTERMITTENT
    return names


def with_candidates(cfg: Config, n_series: int, zero_shares: Sequence[float]) -> Config:
    """`cfg` with `evaluate.candidates: auto` resolved (`candidates`); explicit lists kept."""
    if not is_auto(cfg.evaluate.candidates):
        return cfg
    chosen = candidates(n_series, zero_shares)
    evaluate = cfg.evaluate.model_copy(update={"candidates": chosen})
    return cfg.model_copy(update={"evaluate": evaluate})

"""tasks/config/auto.py: `auto` params resolved from the data. The bundled series gets the values
it was tuned with, many series get a bounded number of optimizer steps, an explicit number wins,
resolving is idempotent, and the windows it counts are the windows prepare makes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, auto, load_config, parse_config
from tasks.config.auto import DEFAULT_BUDGET, Budget, resolution, resolve
from tasks.features.prepare import prepare

ROOT = Path(__file__).resolve().parents[2]


def config(season: int = 12, horizon: int = 24, n_windows: int = 3, **sections) -> Config:
    raw = {
        "data": {"season_length": season},
        "forecast": {"horizon": horizon},
        "evaluate": {"n_windows": n_windows},
    }
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values}
    return parse_config(raw)


def chosen(cfg: Config, lengths) -> dict:
    return resolution(cfg, lengths).chosen


def test_the_bundled_series_gets_the_values_it_was_tuned_with():
    # AirPassengers: 144 monthly points, horizon 24, 3 folds; its explicit params until issue 22
    # were lookback 36, validation 12, step 12, batch 16, epochs 100, ensemble 3, every window.
    cfg = load_config(ROOT / "params.yaml")
    assert chosen(cfg, [144]) == {
        "evaluate.step": 12,
        "prepare.validation_steps": 12,
        "prepare.lookback": 36,
        "training.batch_size": 16,
        "training.windows_per_epoch": None,
        "training.epochs": 100,
        "training.ensemble": 3,
    }


# (season, horizon, series, length) -> what the rule picks: the M3 shapes of issue 22.
M3 = {
    "monthly": ((12, 18, 1428, 120), {"step": 12, "lookback": 27, "batch": 512,
                                      "per_epoch": 65536, "epochs": 16, "ensemble": 1}),
    "quarterly": ((4, 8, 756, 40), {"step": 4, "lookback": 12, "batch": 64,
                                    "per_epoch": None, "epochs": 19, "ensemble": 1}),
    "yearly": ((1, 6, 645, 25), {"step": 3, "lookback": 4, "batch": 64,
                                 "per_epoch": None, "epochs": 28, "ensemble": 1}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(M3))
def test_many_series_train_in_a_bounded_number_of_steps(name):
    (season, horizon, series, length), want = M3[name]
    res = resolution(config(season, horizon), [length] * series)
    c = res.chosen
    got = {
        "step": c["evaluate.step"],
        "lookback": c["prepare.lookback"],
        "batch": c["training.batch_size"],
        "per_epoch": c["training.windows_per_epoch"],
        "epochs": c["training.epochs"],
        "ensemble": c["training.ensemble"],
    }
    assert got == want
    assert c["prepare.validation_steps"] == c["evaluate.step"]
    # The point of it: optimizer steps, not windows, set the time (batch 16 over 66k windows
    # was 4,110 steps an epoch).
    steps = res.basis["steps_per_epoch"]
    assert steps <= DEFAULT_BUDGET.max_steps_per_epoch
    assert steps * c["training.epochs"] * c["training.ensemble"] <= DEFAULT_BUDGET.steps
    # The median series holds the resolved geometry.
    assert res.config.lstm_history <= length


def test_lookback_is_cut_to_what_the_median_series_holds_never_below_a_season():
    # monthly, horizon 18: target max(24, 27) = 27; need beside it 2 * 18 + 12 + 2 * 12 = 72
    assert chosen(config(12, 18), [90] * 5)["prepare.lookback"] == 18
    assert chosen(config(12, 18), [60, 90, 200])["prepare.lookback"] == 18  # the median, 90
    assert chosen(config(12, 18), [50] * 5)["prepare.lookback"] == 12  # the seasonal floor
    no_residual = config(12, 18, model={"seasonal_residual": False})
    assert chosen(no_residual, [50] * 5)["prepare.lookback"] == 2


def test_tail_steps_stay_within_half_a_horizon_and_one():
    assert auto.tail_steps(12, 24) == 12
    assert auto.tail_steps(1, 6) == 3  # yearly: folds 3 apart, not 1
    assert auto.tail_steps(168, 48) == 48  # hourly, weekly season: at most a horizon
    assert auto.tail_steps(7, 1) == 1


def test_an_explicit_number_wins_and_the_rest_follows_it():
    cfg = config(12, 18, prepare={"lookback": 24}, training={"batch_size": 32, "ensemble": 2})
    res = resolution(cfg, [120] * 1428)
    assert "prepare.lookback" not in res.chosen and res.config.prepare.lookback == 24
    assert res.config.training.batch_size == 32 and res.config.training.ensemble == 2
    # auto windows_per_epoch follows the explicit batch: 128 batches of 32
    assert res.chosen["training.windows_per_epoch"] == 128 * 32
    explicit_null = config(training={"windows_per_epoch": None})
    assert resolve(explicit_null, [120] * 1428).training.windows_per_epoch is None


def test_resolving_is_idempotent_and_needs_the_whole_series():
    cfg = config(12, 18)
    once = resolve(cfg, [120] * 100)
    assert resolve(once, [30] * 3) is once  # nothing left to resolve: other lengths change nothing
    assert resolution(once, [120] * 100).chosen == {}
    assert not any(auto.is_auto(auto.get(once, key)) for key in auto.KEYS)


def test_unresolved_lstm_history_is_the_most_a_resolved_one_asks_for():
    # the data-free targets: a resolved config never needs more steps for the LSTM
    for season, horizon in ((12, 24), (12, 18), (4, 8), (1, 6), (7, 14)):
        cfg = config(season, horizon)
        for length in (10, 30, 60, 200):
            assert resolve(cfg, [length] * 4).lstm_history <= cfg.lstm_history


def test_the_budget_is_a_knob():
    small = Budget(steps=512, max_members=1)
    res = resolution(config(12, 24), [144], budget=small)
    assert res.chosen["training.epochs"] == 100 and res.chosen["training.ensemble"] == 1


def test_the_record_and_the_log_line():
    res = resolution(load_config(ROOT / "params.yaml"), [144])
    record = res.record()
    assert record["chosen"]["prepare.lookback"] == 36
    basis = {"series": 1, "median_length": 144, "season_length": 12, "horizon": 24}
    assert record["basis"] == {**basis, "train_windows": 49, "steps_per_epoch": 4}
    line = res.describe()
    assert line.startswith("auto: evaluate.step 12, ") and "train_windows 49" in line


def _frame(lengths: dict[str, int]) -> pl.DataFrame:
    parts = []
    for sid, n in lengths.items():
        stamps = pl.datetime_range(
            datetime(2000, 1, 1), datetime(2100, 1, 1), "1mo", eager=True, time_unit="us"
        ).head(n)
        value = 100 + 10 * np.sin(np.arange(n) * 2 * np.pi / 12) + np.arange(n)
        parts.append(pl.DataFrame({SERIES_ID: [sid] * n, TIMESTAMP: stamps, VALUE: value}))
    return pl.concat(parts)


def test_the_windows_it_counts_are_the_windows_prepare_makes():
    lengths = {"a": 99, "b": 130, "c": 151}  # 99: the resolved lstm_history
    cfg = config(12, 18)
    res = resolution(cfg, list(lengths.values()))
    prepared = prepare(_frame(lengths), cfg)  # resolves the same way from the frame
    assert prepared.geometry.lookback == res.config.prepare.lookback
    assert prepared.validation_steps == res.config.prepare.validation_steps
    assert prepared.train_starts.size == res.basis["train_windows"]
    assert list(prepared.lengths) == sorted(lengths.values())


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("prepare", "lookback", "long", "Input should be a valid integer or 'auto', got 'long'"),
        ("training", "epochs", 0, "greater than or equal to 1"),
        ("training", "ensemble", 33, "less than or equal to 32"),
        ("training", "batch_size", True, "valid integer or 'auto'"),
        ("training", "windows_per_epoch", 2.5, "valid integer, null or 'auto'"),
        ("evaluate", "step", "AUTO", "valid integer or 'auto'"),
    ],
)
def test_a_bad_value_names_its_key_once(section, key, value, message):
    from tasks.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config({section: {key: value}})
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 1 and f"params.yaml: {section}.{key}: " in lines[0]
    assert message in lines[0]


def test_the_lstm_series_are_a_fixed_point_of_auto_on_their_own_lengths():
    """prepare keeps the series long enough for the LSTM (tasks.features.prepare.lstm_series);
    auto is then resolved from those lengths in every stage, and must keep exactly those: the
    shortest dropped, the median rises, the lookback may grow, and so may the need."""
    from tasks.features.prepare import lstm_series

    lengths = {"s20": 20, "s60": 60, "s70": 70, "a": 99, "b": 130, "c": 151}
    cfg = config(12, 18)
    kept = lstm_series(_frame(lengths), cfg)
    kept_lengths = dict(kept.group_by(SERIES_ID).len().iter_rows())
    need = resolve(cfg, list(kept_lengths.values())).lstm_history
    assert all(n >= need for n in kept_lengths.values())
    assert all(lengths[sid] < need for sid in set(lengths) - set(kept_lengths))
    assert set(kept_lengths) == {"a", "b", "c"}  # need 84 on all, 99 once 20, 60, 70 are out
    # on all the lengths the need would be smaller than what the kept ones resolve to
    assert resolve(cfg, list(lengths.values())).lstm_history < need
    prepared = prepare(kept, cfg)  # resolves the same way, and every kept series fits
    assert prepared.geometry.lookback == resolve(cfg, list(prepared.lengths)).prepare.lookback


def test_training_step_budget_sets_the_epochs_auto_fills():
    lengths = [134] * 1000  # M3-monthly-like: the epochs, not the batch, follow the budget
    full = resolution(config(12, 18), lengths)
    half = resolution(config(12, 18, training={"step_budget": 3000}), lengths)
    steps = full.basis["steps_per_epoch"]
    assert half.basis["steps_per_epoch"] == steps
    assert half.chosen["training.batch_size"] == full.chosen["training.batch_size"]
    assert half.chosen["training.epochs"] == 3000 // steps
    assert full.chosen["training.epochs"] == 2048 // steps  # the default budget
    # an explicit number still wins over the budget
    fixed = resolution(config(12, 18, training={"step_budget": 2048, "epochs": 7}), lengths)
    assert "training.epochs" not in fixed.chosen and fixed.config.training.epochs == 7

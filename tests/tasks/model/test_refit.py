"""The shipped model (tasks/model/refit.py): refit on the full history for the final fold's
early-stopping epochs. A real (tiny) LSTM: a series whose last `horizon` steps carry a level shift
is forecast at the old level by the train stage's model, which never saw those steps, and pulled
towards the new level by the refit one, which trained on them."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import parse_config
from tasks.features.prepare import prepare
from tasks.model.refit import fit_schedule, full_history

N, H, PERIOD, SHIFT = 60, 6, 6, 100.0


def _frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(N)
    value = 100.0 + 10.0 * np.sin(2 * np.pi * t / PERIOD) + rng.normal(0.0, 1.0, N)
    value[-H:] += SHIFT  # the newest `horizon` steps: the test tail of the train stage's split
    stamps = pl.datetime_range(
        datetime(2000, 1, 1), datetime(2030, 1, 1), "1mo", eager=True, time_unit="us"
    ).head(N)
    return pl.DataFrame({SERIES_ID: ["s"] * N, TIMESTAMP: stamps, VALUE: value})


def _cfg():
    # Absolute inputs and outputs: the level is what the network learnt from its targets. (A
    # level-free model, the default relative_inputs, takes the level from its input window.)
    return parse_config(
        {
            "data": {"season_length": PERIOD},
            "forecast": {"horizon": H},
            "prepare": {"lookback": 12, "validation_steps": 12, "transform": "none"},
            "model": {
                "units": [8],
                "dropout": 0.0,
                "seasonal_residual": False,
                "relative_inputs": False,
            },
            "training": {
                "epochs": 60,
                "ensemble": 1,
                "patience": 5,
                "lr_patience": 3,
                "batch_size": 16,
                "learning_rate": 0.01,
                "resume": False,
                "mirrored": False,
            },
        }
    )


def test_full_history_trains_on_every_window_through_the_last_observation():
    p = prepare(_frame(), _cfg())
    full = full_history(p)
    assert int(full.train_end[0]) == N and full.validation_steps == 0
    # every window whose target ends by the last observation, and no validation windows
    assert full.train_starts.size == N - 12 - H + 1 and full.val_starts.size == 0
    assert full.train_starts.size == p.train_starts.size + p.val_starts.size + H


def test_schedule_is_each_members_best_epoch_with_its_learning_rates():
    history = pl.DataFrame(
        {
            "member": [0, 0, 0, 0, 1, 1, 1],
            "epoch": [1, 2, 3, 4, 1, 2, 3],
            "loss": [1.0] * 7,
            "val_loss": [0.9, 0.5, 0.6, 0.7, 0.8, 0.7, 0.3],
            "learning_rate": [0.01, 0.01, 0.005, 0.005, 0.01, 0.01, 0.01],
        }
    )
    assert fit_schedule(history) == [[0.01, 0.01], [0.01, 0.01, 0.01]]
    with pytest.raises(ValueError, match="rerun the train stage"):
        fit_schedule(history.head(0))


@pytest.mark.slow
def test_a_level_shift_in_the_newest_steps_shows_after_the_refit_and_not_before(tmp_path):
    from tasks.features.prepare import trained_through
    from tasks.model.forecast import forecast_original
    from tasks.model.refit import refit
    from tasks.model.train import train

    cfg = _cfg()
    p = prepare(_frame(), cfg)
    before_model = train(p, cfg, tmp_path / "ckpt")  # the train stage: through N - H
    schedule = fit_schedule(before_model.history)
    shipped = refit(p, cfg, schedule)
    assert shipped.summary["epochs"] == [len(schedule[0])]
    assert shipped.summary["trained_through"] == {"s": "2004-12-01T00:00:00"}  # the last one
    assert trained_through(p) == {"s": "2004-06-01T00:00:00"}  # the train stage's model

    before = forecast_original(p, before_model.model, p.forecast_starts)[0]
    after = forecast_original(p, shipped.model, p.forecast_starts)[0]
    old_top = float(p.raw[: N - H].max())
    # Before: the old level's pattern, whatever the shifted inputs (it never saw a target there).
    assert before.max() < old_top + 0.1 * SHIFT
    # After: the steps it trained on pull the forecast up, most at the later horizon steps,
    # whose targets the shift filled in most training windows.
    late = slice(H // 2, H)
    assert after[late].mean() - before[late].mean() > 0.1 * SHIFT
    assert after[late].mean() > old_top
    # Epochs the size of the train stage's (what evaluate passes): fewer steps over the newest
    # windows, a smaller move (16.8 against 31.4 here), but still the same way.
    judged = refit(p, cfg, schedule, windows_per_epoch=p.train_starts.size)
    assert judged.summary["windows_per_epoch"] == p.train_starts.size
    sampled = forecast_original(p, judged.model, p.forecast_starts)[0]
    assert sampled[late].mean() - before[late].mean() > 0.1 * SHIFT


def test_the_judged_epoch_is_the_train_stages_windows_or_its_smaller_sample():
    from tasks.model.refit import judged_epoch

    assert judged_epoch(19809, None) == 19809
    assert judged_epoch(19809, 4096) == 4096
    assert judged_epoch(100, 4096) == 100
    with pytest.raises(ValueError, match="no training windows"):
        judged_epoch(0, None)


def test_the_refit_samples_the_given_windows_per_epoch_so_its_steps_are_the_judged_fits():
    from tasks.model.refit import refit

    cfg = _cfg()
    p = prepare(_frame(), cfg)
    schedule = [[0.003, 0.003, 0.0015]]
    every = refit(p, cfg, schedule).summary
    batch = cfg.training.batch_size
    assert every["windows_per_epoch"] == every["train_windows"] > 2 * batch
    assert every["optimizer_steps"] == 3 * -(-every["train_windows"] // batch)
    sampled = refit(p, cfg, schedule, windows_per_epoch=batch).summary
    assert sampled["windows_per_epoch"] == batch and sampled["optimizer_steps"] == 3

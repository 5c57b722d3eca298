"""Combinations (tasks/evaluation/combinations.py): candidates forecasting the mean of other
models' forecasts, scored on every fold from that fold's forecasts, published the same way."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID
from tasks.evaluation import backtest, combinations
from tasks.evaluation.baselines import FORECASTERS, forecast_all, scored_models
from tasks.evaluation.short import needs as short_needs
from tasks.evaluation.short import short_candidates
from tasks.features.prepare import prepare
from tasks.publishing.forecasts import future_forecasts
from tests.tasks.evaluation.test_backtest import (
    HORIZON,
    SEASON,
    SeasonalNaiveModel,
    make_cfg,
    make_frame,
)

LENGTHS = {"a": 60, "b": 72, "c": 66}


def test_parts_are_scored_whenever_a_combination_is_listed():
    assert combinations.parts_to_score(["naive", "mean_lstm_ets_theta"]) == (
        "naive",
        "lstm",
        "ets",
        "theta",
        "mean_lstm_ets_theta",
    )
    names = scored_models(("naive", "mean_ets_theta"))
    assert {"ets", "theta", "mean_ets_theta"} <= set(names) and "mean_lstm_ets_theta" not in names
    with pytest.raises(ValueError, match=r"needs the forecasts of \['theta'\]"):
        combinations.combine("mean_ets_theta", {"ets": np.zeros(3)})


# mean_drift_ets: a baseline part (drift), which forecast_all fits beside the statistical ones.
@pytest.mark.parametrize(
    ("name", "parts", "drift"),
    [("mean_ets_theta", ("ets", "theta"), 0.0), ("mean_drift_ets", ("drift", "ets"), 0.5)],
)
def test_a_statistical_combination_is_the_mean_of_its_parts_per_series(name, parts, drift):
    rng = np.random.default_rng(1)
    histories = [100 + np.cumsum(rng.normal(drift, 1, n)) for n in (30, 40)]
    out = forecast_all([name], histories, HORIZON, SEASON)
    fitted = forecast_all(list(parts), histories, HORIZON, SEASON)
    np.testing.assert_allclose(out[name], (fitted[parts[0]] + fitted[parts[1]]) / 2)
    one = FORECASTERS[name](histories[0], HORIZON, SEASON)
    np.testing.assert_allclose(one, out[name][0], rtol=1e-9)


def test_the_three_model_combination_adds_ces_to_ets_and_theta():
    rng = np.random.default_rng(4)
    histories = [100 + np.cumsum(rng.normal(0, 1, n)) for n in (30, 48)]
    out = forecast_all(["mean_ets_theta_ces"], histories, HORIZON, SEASON)
    parts = forecast_all(["ets", "theta", "ces"], histories, HORIZON, SEASON)
    expected = (parts["ets"] + parts["theta"] + parts["ces"]) / 3
    np.testing.assert_allclose(out["mean_ets_theta_ces"], expected, rtol=1e-12)
    assert not np.allclose(parts["ces"], parts["ets"])  # a third opinion, not a copy
    assert combinations.parts_to_score(["mean_lstm_ets_theta_ces"]) == (
        "lstm", "ets", "theta", "ces", "mean_lstm_ets_theta_ces",
    )  # fmt: skip
    assert combinations.needs_lstm("mean_lstm_ets_theta_ces")
    assert not combinations.needs_lstm("mean_ets_theta_ces")


def test_the_networks_combination_averages_this_folds_lstm_with_ets_and_theta():
    cfg = make_cfg(n_windows=1)
    prepared = prepare(make_frame(LENGTHS), cfg)
    names = scored_models(("naive", "mean_lstm_ets_theta"))
    result = backtest.score_fold(0, prepared, SeasonalNaiveModel(), names)
    p = result.preds
    np.testing.assert_allclose(
        p["mean_lstm_ets_theta"], (p["lstm"] + p["ets"] + p["theta"]) / 3, rtol=1e-12
    )
    four = backtest.score_fold(
        0, prepared, SeasonalNaiveModel(), scored_models(("naive", "mean_lstm_ets_theta_ces"))
    ).preds
    np.testing.assert_allclose(
        four["mean_lstm_ets_theta_ces"],
        (four["lstm"] + four["ets"] + four["theta"] + four["ces"]) / 4,
        rtol=1e-12,
    )
    # Reusing the fold's statistical forecasts never reuses a combination with the network: it
    # is made again from the new model's forecasts.
    again = backtest.score_fold(0, prepared, SeasonalNaiveModel(offset=0.5), names, reuse=result)
    np.testing.assert_allclose(again.preds["ets"], p["ets"])
    np.testing.assert_allclose(
        again.preds["mean_lstm_ets_theta"],
        (again.preds["lstm"] + p["ets"] + p["theta"]) / 3,
        rtol=1e-12,
    )


def test_publish_forecasts_a_combination_from_the_shipped_lstm_and_the_parts():
    prepared = prepare(make_frame(LENGTHS), make_cfg(n_windows=1))
    choices = {"a": "mean_lstm_ets_theta", "b": "mean_ets_theta"}  # c: the LSTM
    out = future_forecasts(prepared, SeasonalNaiveModel(), "1mo", choices=choices)
    lstm = future_forecasts(prepared, SeasonalNaiveModel(), "1mo")
    for s, sid in enumerate(prepared.series_ids):
        rows = out.filter(pl.col(SERIES_ID) == sid).sort("horizon_step")
        assert rows["model"].unique().to_list() == [choices.get(sid, "lstm")]
        history = prepared.raw[prepared.series(s)]
        own = lstm.filter(pl.col(SERIES_ID) == sid).sort("horizon_step")["forecast"].to_numpy()
        ets = FORECASTERS["ets"](history, HORIZON, SEASON)
        theta = FORECASTERS["theta"](history, HORIZON, SEASON)
        expected = {"a": (own + ets + theta) / 3, "b": (ets + theta) / 2, "c": own}[sid]
        np.testing.assert_allclose(rows["forecast"], expected, rtol=1e-5)


def test_short_series_never_get_the_networks_combination():
    cfg = make_cfg(n_windows=1).model_copy(deep=True)
    cfg = cfg.model_copy(
        update={
            "evaluate": cfg.evaluate.model_copy(
                update={"candidates": ("naive", "mean_ets_theta", "mean_lstm_ets_theta")}
            )
        }
    )
    assert short_candidates(cfg) == ("naive", "mean_ets_theta")
    cfg = cfg.model_copy(
        update={
            "evaluate": cfg.evaluate.model_copy(
                update={"candidates": ("naive", "mean_lstm_ets_theta_ces", "mean_ets_theta_ces")}
            )
        }
    )
    assert short_candidates(cfg) == ("naive", "mean_ets_theta_ces")


def test_the_family_is_every_mean_of_two_or_more_parts_holding_a_smoother():
    family = combinations.COMBINATIONS
    assert len(family) == 25
    for name, parts in family.items():
        assert name == "mean_" + "_".join(parts)
        assert len(parts) >= 2 and {"ets", "theta", "ces"} & set(parts)
    assert "mean_lstm_drift" not in family  # the network and drift alone: no smoother
    assert family["mean_ets_theta"] == ("ets", "theta")  # the names runs already published keep
    assert family["mean_lstm_ets_theta_ces"] == ("lstm", "ets", "theta", "ces")


def test_the_names_params_may_list_are_the_forecasters_registered():
    from tasks.config import choices
    from tasks.evaluation.baselines import BASELINES
    from tasks.evaluation.statistical import SPECS

    assert tuple(BASELINES) == choices.BASELINE_CANDIDATES
    assert tuple(SPECS) == choices.STATISTICAL_CANDIDATES
    # A short series needs what drift needs (two steps), the most of its parts.
    assert short_needs("mean_drift_ets", SEASON) == 2 and short_needs("mean_ets_theta", SEASON) == 1


def test_params_name_any_member_of_the_family_and_nothing_else():
    from tasks.config import parse_config

    cfg = parse_config({"evaluate": {"candidates": ["naive", "mean_lstm_drift_theta"]}})
    assert cfg.evaluate.candidates == ("naive", "mean_lstm_drift_theta")
    with pytest.raises(ValueError, match="evaluate.candidates") as err:
        parse_config({"evaluate": {"candidates": ["naive", "mean_naive_ets"]}})
    assert "mean_drift_ets" in str(err.value)  # the message lists what may be named

"""Short series (tasks/evaluation/short.py): too short for the LSTM, not broken. Each is scored
on the folds its history has, chosen on its older folds (never on fold 0, the one it is scored
on), or by the fixed default rule when it has none, and says why."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.evaluation import short
from tests.tasks.evaluation.test_backtest import HORIZON, SEASON, make_cfg

# lstm_history = lookback 12 + 2 * horizon 6 + validation 3 + (3 - 1) * step 4 = 35 steps.
CFG = make_cfg(n_windows=3, step=4)


def _trend(n: int) -> np.ndarray:
    return 100.0 + 5.0 * np.arange(n)


@pytest.mark.parametrize(
    ("n", "folds"), [(1, []), (6, []), (7, [0]), (10, [0]), (11, [0, 1]), (15, [0, 1, 2])]
)
def test_a_fold_exists_where_its_origin_leaves_the_minimum_history(n, folds):
    # fold k's origin is n - H - k * step; it needs min_history (1: naive's one value) before it
    assert CFG.lstm_history == 35 and CFG.min_history == 1
    assert short.available_folds(n, CFG) == folds


def test_a_series_with_older_folds_is_chosen_there_and_says_so():
    choice = short.choose_short("t", _trend(30), CFG)
    assert choice.folds == [0, 1, 2]
    assert choice.model == "drift"  # a straight line: drift is exact on every fold
    assert choice.reason == "too short for the LSTM (30 < 35 steps): best candidate on 2 folds"
    assert choice.evidence["metric"] == "mase"
    assert set(choice.evidence) == {"metric", "naive", "seasonal_naive", "drift"}
    assert choice.fold0["drift"]["mae"] == pytest.approx(0.0, abs=1e-9)


def test_the_choice_never_looks_at_fold_0():
    values = _trend(30)
    before = short.choose_short("t", values, CFG)
    # Steps 26.. are only in fold 0's test tail (fold 1's ends at 20 + H = 26): make drift
    # terrible there; the choice and its evidence must not move, fold 0's scores must.
    wild = values.copy()
    wild[26:] = 10.0
    after = short.choose_short("t", wild, CFG)
    assert (after.model, after.reason, after.evidence) == (
        before.model,
        before.reason,
        before.evidence,
    )
    assert after.fold0["drift"]["mae"] > 100 * max(before.fold0["drift"]["mae"], 1e-6)


def test_a_candidate_compete_only_where_every_older_fold_could_fit_it():
    # origins 19, 15, 11: seasonal naive needs a season (12) and misses fold 2
    choice = short.choose_short("t", _trend(25), CFG)
    assert "seasonal_naive" not in choice.evidence
    assert choice.model in {"naive", "drift"}


@pytest.mark.parametrize(
    ("n", "cfg", "model", "reason"),
    [
        (5, CFG, "naive", "(5 < 35 steps) and for any fold: naive by default"),
        (10, CFG, "naive", "and for any older fold: naive by default"),
        # a full season and only fold 0 (step 12): seasonal naive, the gate's reference
        (15, make_cfg(n_windows=2, step=12), "seasonal_naive", "seasonal_naive by default"),
    ],
)
def test_no_older_fold_means_the_fixed_default_rule(n, cfg, model, reason):
    values = np.random.default_rng(0).normal(100.0, 10.0, n)
    choice = short.choose_short("s", values, cfg)
    assert (choice.model, choice.evidence) == (model, {})
    assert reason in choice.reason
    assert choice.model == short.default_model(n, SEASON)
    # the default rule never depends on the values: another series of that length, same choice
    assert short.choose_short("s", values[::-1] * 3, cfg).model == model


def test_mase_undefined_on_a_short_history_ranks_by_mae():
    # origins 6 and 4: every history before an origin is shorter than a season
    cfg = make_cfg(n_windows=2, step=2)
    choice = short.choose_short("t", _trend(12), cfg)
    assert choice.folds == [0, 1] and choice.evidence["metric"] == "mae"
    assert choice.model == "drift"


def test_the_short_series_of_a_frame_and_their_summary():
    stamps = pl.datetime_range(
        datetime(2000, 1, 1), datetime(2010, 1, 1), "1mo", eager=True, time_unit="us"
    )
    parts = [
        pl.DataFrame({SERIES_ID: sid, TIMESTAMP: stamps.head(n), VALUE: _trend(n)})
        for sid, n in (("long", 40), ("b", 30), ("a", 3))
    ]
    series = short.short_series(pl.concat(parts), ["long"])
    assert list(series) == ["a", "b"]
    assert series["a"][VALUE].to_list() == [100.0, 105.0, 110.0]
    choices = short.choose_all(short.values_of(series), CFG)
    summary = short.summary(choices)
    assert summary["series"] == 2
    assert summary["published_by"] == {"drift": 1, "naive": 1}
    assert summary["reasons"] == {"chosen_on_older_folds": 1, "default_rule_no_fold": 1}
    # only b has fold 0: its chosen candidate's scores there, beside seasonal naive's
    assert summary["scored_on_fold_0"] == 1
    assert summary["published"]["mae"] == pytest.approx(0.0, abs=1e-9)
    assert summary["seasonal_naive"]["mae"] > 0
    assert HORIZON == 6


def test_candidates_are_fitted_in_one_call_per_fold_and_candidate():
    """The seam for a batch fit (statsforecast over every series at once): one call per fold and
    candidate over every short series that has that fold, whatever the number of series."""
    calls = []

    def counting(name, histories, h, m):
        calls.append((name, len(histories)))
        return short.forecast_batch(name, histories, h, m)

    values = {f"s{i}": _trend(30 + i) for i in range(5)} | {"tiny": _trend(3)}
    batched = short.choose_all(values, CFG, forecast=counting)
    assert len(calls) == 3 * 3  # folds x (naive, seasonal_naive, drift)
    assert ("drift", 5) in calls  # the five series with folds, in one call; tiny has none
    one_by_one = [short.choose_short(sid, v, CFG) for sid, v in values.items()]
    assert batched == one_by_one


def test_a_combination_is_the_mean_of_its_parts_on_each_fold_never_fitted_again():
    calls = []

    def counting(name, histories, h, m):
        calls.append(name)
        return short.forecast_batch(name, histories, h, m)

    cfg = CFG.model_copy(
        update={
            "evaluate": CFG.evaluate.model_copy(
                update={"candidates": ("naive", "ets", "theta", "mean_ets_theta")}
            )
        }
    )
    values = {f"s{i}": _trend(30 + i) for i in range(3)}
    scores = short.fold_scores(values, cfg, ("naive", "ets", "theta", "mean_ets_theta"), counting)
    assert "mean_ets_theta" not in calls and calls.count("ets") == 3  # once per fold
    y = values["s0"]
    o = short.origin(y.size, 1, cfg)
    ets = short.forecast_batch("ets", [y[:o]], HORIZON, SEASON)[0]
    theta = short.forecast_batch("theta", [y[:o]], HORIZON, SEASON)[0]
    expected = short.score(y[o : o + HORIZON], (ets + theta) / 2, y[:o], SEASON)
    assert scores["s0"][1]["mean_ets_theta"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("toward", "model"), [("combination", "mean_ets_theta"), ("best", "drift")]
)
def test_short_series_give_way_to_the_best_combination_or_the_best_model(toward, model):
    # On a straight line every candidate but naive is off by a constant: drift by 1.0, ETS by
    # 1.05, theta by 1.15, so their mean by 1.1. Drift is every series' own best and the best
    # model; mean_ets_theta the best combination. At margin 0.3 drift does not beat the
    # combination by enough (1.0 is not below 0.7 x 1.1), so it gives way to it.
    offsets = {"drift": 1.0, "ets": 1.05, "theta": 1.15}

    def offset(name, histories, h, m):
        if name not in offsets:
            return short.forecast_batch(name, histories, h, m)
        return [y[-1] + 5.0 * np.arange(1, h + 1) + offsets[name] for y in histories]

    evaluate = {
        "candidates": ("naive", "drift", "ets", "theta", "mean_ets_theta"),
        "choice_margin": 0.3,
        "shrink_toward": toward,
    }
    cfg = CFG.model_copy(update={"evaluate": CFG.evaluate.model_copy(update=evaluate)})
    chosen = short.choose_all({f"s{i}": _trend(30 + i) for i in range(3)}, cfg, forecast=offset)
    assert [c.model for c in chosen] == [model] * 3
    assert all(("overall_best" in c.evidence) == (toward == "combination") for c in chosen)


@pytest.mark.parametrize(("margin", "tiny_model"), [(0.3, "drift"), (0.0, "naive")])
def test_with_shrinkage_a_series_without_older_folds_takes_the_anchor(margin, tiny_model):
    # Drift is the best candidate of the series that have older folds (straight lines), so it is
    # the anchor. A series with no older fold has no evidence that beats it: with shrinkage on
    # it is published by drift, which its 3 steps fit; with margin 0 (no shrinkage) the fixed
    # rule stands. A 1-step series cannot fit drift (2 steps) and keeps the fixed rule.
    evaluate = {"candidates": ("naive", "drift"), "choice_margin": margin}
    cfg = CFG.model_copy(update={"evaluate": CFG.evaluate.model_copy(update=evaluate)})
    values = {f"s{i}": _trend(30 + i) for i in range(3)} | {"tiny": _trend(3), "one": _trend(1)}
    chosen = {c.series_id: c for c in short.choose_all(values, cfg)}
    assert [chosen[f"s{i}"].model for i in range(3)] == ["drift"] * 3
    tiny, one = chosen["tiny"], chosen["one"]
    assert (tiny.model, one.model) == (tiny_model, "naive")
    assert "naive by default" in one.reason
    kinds = short.summary(list(chosen.values()))["reasons"]
    if margin > 0:
        assert tiny.reason.endswith(
            ": drift, the short series' overall best (evaluate.choice_margin > 0)"
        )
        assert tiny.evidence == {"overall_best": "drift"}
        assert kinds == {
            "chosen_on_older_folds": 3,
            "overall_best_no_older_fold": 1,
            "default_rule_no_fold": 1,
        }
    else:
        assert tiny.reason.endswith("for any fold: naive by default")
        assert kinds == {"chosen_on_older_folds": 3, "default_rule_no_fold": 2}


def test_a_combination_needs_what_its_parts_need(monkeypatch):
    assert short.needs("mean_ets_theta", SEASON) == 1
    monkeypatch.setitem(short.NEEDS, "theta", 5)  # were theta to need 5 steps, so would the mean
    assert short.needs("mean_ets_theta", SEASON) == 5

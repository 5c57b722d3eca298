"""Shrinking the per-series choice toward the overall best (tasks/evaluation/shrinkage.py,
evaluate.choice_margin) and `evaluate.candidates: auto` (tasks/config/auto.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tasks.config import auto, parse_config
from tasks.evaluation import combinations, selection, shrinkage


def _folds(per_series: list[dict[str, float]], n_folds: int = 3) -> list:
    """Stand-ins of FoldResult for `choose`: every series scores the same MASE per model on
    every fold (fold 0's are never read: the choice looks at the older folds)."""
    return [
        SimpleNamespace(
            fold=k,
            scales=np.ones(len(per_series)),
            scores={m: [{"mase": s[m]} for s in per_series] for m in per_series[0]},
        )
        for k in range(n_folds)
    ]


# Over these series naive is the overall best (mean 1.0 vs drift 1.1, seasonal naive 2.0,
# LSTM 3.0); series 1 and 2 prefer drift on their own, by 5 % and by 20 %.
SERIES = [
    {"lstm": 3.0, "naive": 1.0, "seasonal_naive": 2.0, "drift": 1.6},
    {"lstm": 3.0, "naive": 1.0, "seasonal_naive": 2.0, "drift": 0.95},
    {"lstm": 3.0, "naive": 1.0, "seasonal_naive": 2.0, "drift": 0.8},
]


def test_the_overall_best_is_the_lowest_mean_over_series():
    evidence = selection.choose(_folds(SERIES), "mase")[1]
    assert shrinkage.overall_best(evidence, ("lstm", "naive", "seasonal_naive", "drift")) == "naive"
    assert shrinkage.overall_best([], ("naive",)) is None


def test_a_series_keeps_its_own_best_only_beyond_the_margin():
    plain = selection.choose(_folds(SERIES), "mase")[0]
    assert plain == ["naive", "drift", "drift"]  # margin 0: each series' own best
    choices, evidence = selection.choose(_folds(SERIES), "mase", margin=0.1)
    # 0.95 is not below 0.9 x 1.0: gives way; 0.8 is: keeps drift.
    assert choices == ["naive", "naive", "drift"]
    assert evidence[1]["overall_best"] == "naive" and "overall_best" not in evidence[2]
    assert selection.choose(_folds(SERIES), "mase", margin=0.25)[0] == ["naive"] * 3


def test_one_series_is_its_own_overall_best():
    # The bundled single series: shrinkage cannot move its choice, whatever the margin.
    one = [{"lstm": 0.7, "naive": 1.0, "seasonal_naive": 0.9, "drift": 1.2}]
    assert selection.choose(_folds(one), "mase", margin=0.5)[0] == ["lstm"]


def test_the_overall_best_ranks_by_the_metric_most_series_rank_by():
    # A constant series ranks by MAE (MASE undefined); listed first, it must not decide the metric.
    evidence = [
        {"metric": "mae", "naive": 0.0, "drift": 5.0},
        {"metric": "mase", "naive": 1.2, "drift": 1.0},
        {"metric": "mase", "naive": 1.3, "drift": 1.1},
    ]
    assert shrinkage.overall_best(evidence, ("naive", "drift")) == "drift"


def test_shrink_never_touches_series_without_the_overall_best_scored():
    evidence = [{"metric": "mase", "naive": 1.0}, {"metric": "mase", "naive": 1.0, "ets": 0.99}]
    assert shrinkage.shrink(["naive", "ets"], evidence, "ets", 0.1) == [False, False]
    assert shrinkage.shrink(["naive", "naive"], evidence, "ets", 0.1) == [False, True]


def test_auto_candidates_follow_the_series_count_and_zeros():
    assert auto.candidates(1, [0.0]) == ("naive", "seasonal_naive", "drift")
    assert auto.candidates(19, [0.0] * 19) == ("naive", "seasonal_naive", "drift")
    assert auto.candidates(20, [0.0] * 20) == auto.BASELINES + (
        "theta",
        "ets",
        "mean_ets_theta",
        "mean_lstm_ets_theta",
        "mean_ets_theta_ces",
        "mean_lstm_ets_theta_ces",
    )
    assert all(combinations.is_combination(c) for c in auto.COMBINATIONS)
    many_zeros = [0.0] * 19 + [0.5]
    assert auto.candidates(20, many_zeros)[-2:] == ("adida", "tsb")
    cfg = parse_config({"evaluate": {"candidates": "auto"}})
    resolved = auto.with_candidates(cfg, 30, [0.0]).evaluate.candidates
    assert resolved == auto.BASELINES + auto.STATISTICAL + auto.COMBINATIONS
    explicit = parse_config({"evaluate": {"candidates": ["naive"]}})
    assert auto.with_candidates(explicit, 30, [0.9]).evaluate.candidates == ("naive",)


@pytest.mark.parametrize("margin", [-0.1, 1.0])
def test_the_margin_is_a_fraction_below_one(margin):
    with pytest.raises(ValueError, match="evaluate.choice_margin"):
        parse_config({"evaluate": {"choice_margin": margin}})


# ETS is the best model over these series (mean 1.0 vs theta 1.03) and mean_ets_theta the best
# combination (1.1); series 0 prefers ETS by 10 %, series 1 prefers theta by 45 %.
WITH_COMBOS = [
    {"lstm": 3.0, "naive": 2.0, "seasonal_naive": 2.0, "drift": 2.0, "theta": 1.4, "ets": 0.9,
     "mean_ets_theta": 1.0, "mean_lstm_ets_theta": 1.5},
    {"lstm": 3.0, "naive": 2.0, "seasonal_naive": 2.0, "drift": 2.0, "theta": 0.66, "ets": 1.1,
     "mean_ets_theta": 1.2, "mean_lstm_ets_theta": 1.6},
]  # fmt: skip
COMBO_CANDIDATES = ("naive", "seasonal_naive", "drift", "theta", "ets", "mean_ets_theta",
                    "mean_lstm_ets_theta")  # fmt: skip


def test_the_choice_shrinks_toward_the_best_model_or_the_best_combination():
    names = ("lstm", *COMBO_CANDIDATES)
    evidence = selection.choose(_folds(WITH_COMBOS), "mase", COMBO_CANDIDATES)[1]
    assert shrinkage.overall_best(evidence, names) == "ets"
    assert shrinkage.anchor(evidence, names, "combination") == "mean_ets_theta"
    assert shrinkage.anchor(evidence, names) == "ets"  # the default: the best model
    # No combination listed: the best model, whatever `toward` says.
    assert shrinkage.anchor(evidence, ("naive", "drift", "ets"), "combination") == "ets"
    choices, evidence = selection.choose(
        _folds(WITH_COMBOS), "mase", COMBO_CANDIDATES, 0.3, "combination"
    )
    # 0.9 is not below 0.7 x 1.0: series 0 gives way to the combination; 0.66 < 0.7 x 1.2 keeps.
    assert choices == ["mean_ets_theta", "theta"]
    assert evidence[0]["overall_best"] == "mean_ets_theta"
    toward_best = selection.choose(_folds(WITH_COMBOS), "mase", COMBO_CANDIDATES, 0.3, "best")[0]
    assert toward_best == ["ets", "theta"]  # ets is its own anchor; 0.66 < 0.7 x 1.1 keeps theta


def test_shrink_toward_is_combination_or_best():
    assert parse_config({}).evaluate.shrink_toward == "best"
    with pytest.raises(ValueError, match="evaluate.shrink_toward"):
        parse_config({"evaluate": {"shrink_toward": "median"}})

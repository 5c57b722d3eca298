"""evaluate(): the backtest record (evaluate.json, folds.json, plots), interval coverage, and the
champion rescored on the current folds - compared only where neither model trained."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluation import backtest
from tasks.evaluation.evaluate import (
    BACKTEST_FORECAST,
    FOLD_ERRORS,
    HORIZON_ERRORS,
    TEST_FORECAST,
    Champion,
    evaluate,
)
from tasks.evaluation.gate import decide
from tasks.features.prepare import prepare, trained_through
from tests.tasks.evaluation.test_backtest import (
    HORIZON,
    LOOKBACK,
    NaNModel,
    SeasonalNaiveModel,
    make_cfg,
    make_frame,
)


def _setup(**cfg_kwargs):
    cfg = make_cfg(**cfg_kwargs)
    folds = backtest.build_folds(prepare(make_frame(), cfg), cfg)
    return cfg, folds


def _models(folds, model, stage=None):
    stage = stage or model
    return backtest.FoldModels([model] * len(folds), stage, [], "fake")


def _meta(folds, **overrides) -> dict:
    p = folds[0]
    meta = {
        "lookback": LOOKBACK,
        "horizon": HORIZON,
        "transform": "log",
        "scaler": "standard",
        "season_length": 12,
        "trained_through": trained_through(p),  # same data as the challenger
        "published_at": "2024-01-01T00:00:00Z",
    }
    return {**meta, **overrides}


def test_scores_folds_intervals_and_plots():
    cfg, folds = _setup()
    ev = evaluate(folds, _models(folds, SeasonalNaiveModel(0.05)), cfg)
    s = ev.scores
    assert set(s) >= {"lstm", "naive", "seasonal_naive", "drift", "intervals", "n_folds"}
    assert set(s["lstm"]) == {"rmse", "mae", "smape", "mase", "coverage_80", "coverage_95"}
    assert s["n_folds"] == 3 and s["n_series"] == 2
    assert s["intervals"]["coverage_method"] == "leave-one-fold-out"
    assert 0.0 <= s["lstm"]["coverage_80"] <= s["lstm"]["coverage_95"] <= 1.0
    assert set(ev.folds["folds"]) == {"fold_0", "fold_1", "fold_2"}
    assert ev.folds["folds"]["fold_0"]["lstm"]["rmse"] > 0
    assert ev.comparison is None
    # 6 residuals per step: 80 % needs no pooling, 95 % pools 4 steps
    assert ev.calibration.pooled_steps == {80: 1, 95: 4}

    test = ev.plots[TEST_FORECAST]
    assert test.height == 2 * HORIZON
    assert (test["lo_95"] <= test["lo_80"]).all() and (test["lo_80"] <= test["lstm"]).all()
    assert (test["lstm"] <= test["hi_80"]).all() and (test["hi_80"] <= test["hi_95"]).all()
    assert ev.plots[BACKTEST_FORECAST].height == 3 * 2 * HORIZON
    assert ev.plots[FOLD_ERRORS]["fold"].to_list() == [0, 1, 2]
    assert ev.plots[HORIZON_ERRORS].height == HORIZON


def test_champion_equal_to_the_challenger_changes_nothing():
    cfg, folds = _setup()
    model = SeasonalNaiveModel(0.05)
    champion = Champion(model=model, md5="m" * 32, meta=_meta(folds))
    ev = evaluate(folds, _models(folds, model), cfg, champion)
    c = ev.comparison
    assert c["status"] == "compared"
    assert c["champion"] == c["challenger"]
    assert c["compared_on"] == {"fold": 0, "series": 2, "series_ids": ["a", "b"]}
    # rescored on every fold; the older folds lie in its training period
    assert [c["per_fold"][f"fold_{k}"]["seen_in_training"] for k in range(3)] == [
        False,
        True,
        True,
    ]
    d = decide(ev.scores, cfg.gate, c)
    assert d["champion"]["abs_change"] == 0.0


def test_worse_challenger_is_measured_against_the_champion_on_fold_0():
    cfg, folds = _setup()
    good, bad = SeasonalNaiveModel(0.0), SeasonalNaiveModel(-0.5)  # trend: below is worse
    champion = Champion(model=good, md5="m" * 32, meta=_meta(folds))
    # the backtest models are good; the final (stage) model the challenger would ship is bad
    ev = evaluate(folds, _models(folds, good, stage=bad), cfg, champion)
    c = ev.comparison
    assert c["challenger"] > c["champion"]
    fold0 = backtest.score_fold(0, folds[0], good).scores["lstm"]
    assert c["champion"] == pytest.approx(np.mean([r["mase"] for r in fold0]))


def test_champion_without_metadata_is_compared_with_its_period_unknown():
    cfg, folds = _setup()
    model = SeasonalNaiveModel()
    ev = evaluate(folds, _models(folds, model), cfg, Champion(model, "m" * 32, None))
    assert ev.comparison["status"] == "compared"
    assert ev.comparison["training_period_known"] is False
    assert ev.comparison["per_fold"]["fold_1"]["seen_in_training"] is None


def test_champion_that_trained_on_the_latest_fold_is_not_compared():
    cfg, folds = _setup()
    through = {sid: "2099-01-01T00:00:00" for sid in ("a", "b")}
    champion = Champion(SeasonalNaiveModel(), "m" * 32, _meta(folds, trained_through=through))
    ev = evaluate(folds, _models(folds, SeasonalNaiveModel()), cfg, champion)
    assert ev.comparison["status"] == "no_comparable_folds"


def test_champion_for_another_horizon_or_transform_is_incompatible():
    cfg, folds = _setup()
    for change in ({"horizon": 12}, {"transform": "none"}):
        champion = Champion(SeasonalNaiveModel(), "m" * 32, _meta(folds, **change))
        ev = evaluate(folds, _models(folds, SeasonalNaiveModel()), cfg, champion)
        assert ev.comparison["status"] == "incompatible"
        assert next(iter(change)) in ev.comparison["reason"]


def test_diverged_champion_is_not_compared_but_a_diverged_challenger_stops():
    cfg, folds = _setup()
    champion = Champion(NaNModel(), "m" * 32, _meta(folds))
    ev = evaluate(folds, _models(folds, SeasonalNaiveModel()), cfg, champion)
    assert ev.comparison["status"] == "diverged"
    from tasks.model.forecast import DivergedModel

    with pytest.raises(DivergedModel):
        evaluate(folds, _models(folds, NaNModel()), cfg)


def test_diverged_final_model_stops_even_when_the_backtest_model_is_fine():
    from tasks.model.forecast import DivergedModel

    cfg, folds = _setup()
    with pytest.raises(DivergedModel):
        evaluate(folds, _models(folds, SeasonalNaiveModel(), stage=NaNModel()), cfg)

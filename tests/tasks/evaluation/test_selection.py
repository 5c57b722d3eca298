"""Per-series model choice (tasks/evaluation/selection.py): the LSTM where it beats its best
baseline on the older folds, else that baseline; the mixture scored on the latest fold only; the
gate on the mixture with gate.max_fallback_fraction; publish's per-series forecasts and intervals.
Fake models stand in for Keras (arithmetic under test); tests/tasks/model/test_refit.py and the
pipeline tests run real ones."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import GateConfig
from tasks.evaluation import backtest, selection, short
from tasks.evaluation.evaluate import evaluate
from tasks.evaluation.gate import decide
from tasks.evaluation.intervals import Calibration
from tasks.features.prepare import prepare
from tasks.features.scaling import SeriesTransform
from tasks.publishing.forecasts import future_forecasts, short_forecasts
from tests.tasks.evaluation.test_backtest import HORIZON, SEASON, make_cfg

N = 72


def _frame(kinds: dict[str, str], seed: int = 0) -> pl.DataFrame:
    """One series per kind: trend (trend x season: seasonal naive lags the trend), seasonal (a
    repeating season plus a little noise: seasonal naive is all there is to know), walk (a
    random walk: no season at all)."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    stamps = pl.datetime_range(
        datetime(2000, 1, 1), datetime(2030, 1, 1), "1mo", eager=True, time_unit="us"
    ).head(N)
    parts = []
    for sid, kind in kinds.items():
        if kind == "trend":
            value = (100.0 + 3.0 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / SEASON))
        elif kind == "seasonal":
            season = 100.0 * (1 + 0.3 * np.sin(2 * np.pi * t / SEASON))
            value = season + rng.normal(0.0, 0.5, N)
        else:
            value = 200.0 + np.cumsum(rng.normal(0.0, 5.0, N))
        parts.append(pl.DataFrame({SERIES_ID: [sid] * N, TIMESTAMP: stamps, VALUE: value}))
    return pl.concat(parts)


class SeasonalDriftModel:
    """Seasonal naive plus the change between the last two seasons, in the scaled space: what a
    good network learns on a trending seasonal series (beats every baseline there)."""

    def predict(self, x, batch_size=None, verbose=0):
        lookback = x.shape[1]
        last = x[:, lookback - SEASON :, 0]
        prev = x[:, lookback - 2 * SEASON : lookback - SEASON, 0]
        growth = (last - prev).mean(axis=1, keepdims=True)
        idx = [h % SEASON for h in range(HORIZON)]
        step = np.array([1 + h // SEASON for h in range(HORIZON)])[None, :]
        return last[:, idx] + growth * step


def _evaluate(kinds, model=None, **cfg_kwargs):
    cfg = make_cfg(**{"n_windows": 3, "step": 6, **cfg_kwargs})
    cfg = cfg.model_copy(update={"prepare": cfg.prepare.model_copy(update={"lookback": 24})})
    folds = backtest.build_folds(prepare(_frame(kinds), cfg), cfg)
    model = model or SeasonalDriftModel()
    models = backtest.FoldModels([model] * len(folds), model, [], "fake")
    return cfg, folds, evaluate(folds, models, cfg)


def test_the_lstm_publishes_where_it_wins_and_the_best_baseline_where_it_loses():
    _, _, ev = _evaluate({"trend": "trend", "seasonal": "seasonal", "walk": "walk"})
    chosen = dict(zip(ev.selection.series_ids, ev.selection.choices, strict=True))
    # trend: the model has the growth that seasonal naive lacks; seasonal: its growth term only
    # adds noise to seasonal naive; walk: no season, the season-based model loses
    assert chosen["trend"] == "lstm"
    assert chosen["seasonal"] == "seasonal_naive"
    assert chosen["walk"] != "lstm"
    evidence = dict(zip(ev.selection.series_ids, ev.selection.evidence, strict=True))
    assert evidence["seasonal"]["lstm"] > evidence["seasonal"]["seasonal_naive"]
    assert evidence["trend"]["lstm"] < 0.5 * evidence["trend"]["seasonal_naive"]
    assert evidence["walk"]["lstm"] > evidence["walk"][chosen["walk"]]
    s = ev.scores
    assert s["selection"]["counts"]["lstm"] == 1
    assert sum(s["selection"]["counts"].values()) == 3
    assert s["selection"]["fallback_fraction"] == pytest.approx(2 / 3)
    assert s["selection"]["chosen_on_folds"] == [1, 2] and s["selection"]["scored_on_fold"] == 0
    # same keys as the LSTM's entry, and the mixture beats every single model on fold 0 here
    assert set(s["published"]) == set(s["lstm"])
    for name in ("lstm", "naive", "seasonal_naive", "drift"):
        assert s["published"]["mase"] < s["latest_fold"][name]["mase"]


def test_the_published_figure_is_the_chosen_models_on_the_latest_fold():
    _, folds, ev = _evaluate({"trend": "trend", "seasonal": "seasonal", "walk": "walk"})
    fold0 = backtest.score_fold(0, folds[0], SeasonalDriftModel())
    rows = [fold0.scores[c][s] for s, c in enumerate(ev.selection.choices)]
    assert ev.scores["published"]["mase"] == pytest.approx(np.mean([r["mase"] for r in rows]))
    assert ev.scores["published"]["rmse"] == pytest.approx(np.mean([r["rmse"] for r in rows]))
    assert 0.0 <= ev.scores["published"]["coverage_80"] <= ev.scores["published"]["coverage_95"]


def test_the_choice_never_looks_at_the_latest_fold():
    _, folds, _ = _evaluate({"trend": "trend", "walk": "walk"})
    results = backtest.run_backtest(folds, [SeasonalDriftModel()] * len(folds))
    before, _ = selection.choose(results, "mase")
    # make the other choice perfect on fold 0 only: the choice must not move
    for s, name in enumerate(before):
        other = "naive" if name == "lstm" else "lstm"
        results[0].scores[other][s] = dict.fromkeys(results[0].scores[other][s], 0.0)
    after, _ = selection.choose(results, "mase")
    assert after == before


def test_one_fold_is_a_clear_error():
    cfg = make_cfg(n_windows=1)
    with pytest.raises(selection.SelectionError, match="evaluate.n_windows >= 2"):
        selection.require_folds(cfg)
    folds = backtest.build_folds(prepare(_frame({"t": "trend"}), cfg), cfg)
    models = backtest.FoldModels([SeasonalDriftModel()], SeasonalDriftModel(), [], "fake")
    with pytest.raises(selection.SelectionError, match="evaluate.n_windows"):
        evaluate(folds, models, cfg)


def test_the_gate_judges_the_mixture_and_the_fallback_fraction():
    _, _, ev = _evaluate({"trend": "trend", "seasonal": "seasonal", "walk": "walk"})
    # The level checks only (the default skill checks: tests/tasks/evaluation/test_gate.py).
    levels = {"min_improvement_over_seasonal_naive": 0.0, "mase_ratio_below": None,
              "max_worse_series_fraction": None}  # fmt: skip
    passed = decide(ev.scores, GateConfig(max_mase=2.0, max_fallback_fraction=1.0, **levels))
    assert passed["passed"] is True and passed["judged"] == "published"
    assert [c["name"] for c in passed["checks"]] == [
        "published_mase_max",
        "published_rmse_vs_seasonal_naive",
        "fallback_fraction_max",
    ]
    # the reference is seasonal naive on the same (latest) fold as the mixture
    assert passed["seasonal_naive"]["rmse"] == ev.scores["latest_fold"]["seasonal_naive"]["rmse"]
    failed = decide(ev.scores, GateConfig(max_mase=2.0, max_fallback_fraction=0.5, **levels))
    assert failed["passed"] is False
    assert len(failed["reasons"]) == 1 and "66.7% of series" in failed["reasons"][0]
    assert "gate.max_fallback_fraction 50.0%" in failed["reasons"][0]


def test_publish_forecasts_each_series_with_its_model_and_intervals():
    cfg, folds, ev = _evaluate({"trend": "trend", "seasonal": "seasonal", "walk": "walk"})
    choices, cals = selection.load_choices(ev.selection.to_json())
    out = future_forecasts(folds[0], SeasonalDriftModel(), "1mo", ev.calibration, choices, cals)
    by = {sid: part for (sid,), part in out.group_by(SERIES_ID)}
    assert {sid: part["model"].unique().to_list() for sid, part in by.items()} == {
        sid: [name] for sid, name in choices.items()
    }
    seasonal = by["seasonal"].sort("horizon_step")["forecast"].to_numpy()
    history = folds[0].raw[folds[0].series(0)]  # series sorted: seasonal, trend, walk
    np.testing.assert_allclose(seasonal, np.tile(history[-SEASON:], 2)[:HORIZON], rtol=1e-9)
    assert (out["lo_95"] <= out["lo_80"]).all() and (out["lo_80"] <= out["forecast"]).all()
    assert (out["forecast"] <= out["hi_80"]).all() and (out["hi_80"] <= out["hi_95"]).all()
    # a baseline's intervals are its own calibration's widths around it (scaled space)
    p, width = folds[0], cals["seasonal_naive"].widths[95]
    z = p.transform.transform("seasonal", seasonal)
    hi = p.transform.inverse("seasonal", z + width)
    np.testing.assert_allclose(by["seasonal"].sort("horizon_step")["hi_95"], hi, rtol=1e-9)
    assert not np.allclose(width, ev.calibration.widths[95])
    # without a calibration for the chosen baseline, publish refuses
    with pytest.raises(ValueError, match="no interval calibration"):
        future_forecasts(folds[0], SeasonalDriftModel(), "1mo", ev.calibration, choices, {})
    assert isinstance(cals["drift"], Calibration)


@pytest.mark.slow
def test_a_real_lstm_loses_to_seasonal_naive_on_a_pure_season_and_is_not_published(tmp_path):
    """A real (tiny) LSTM on an exactly repeating season, beside a trending one: seasonal naive
    is exact there, no network matches it, and that series publishes seasonal naive."""
    from tasks.model.train import train

    t = np.arange(N)
    exact = 100.0 * (1 + 0.3 * np.sin(2 * np.pi * (t % SEASON) / SEASON))
    frame = pl.concat(
        [
            _frame({"trend": "trend"}),
            _frame({"trend": "trend"}).with_columns(
                pl.lit("exact").alias(SERIES_ID), pl.Series(VALUE, exact)
            ),
        ]
    )
    cfg = make_cfg(
        n_windows=3,
        step=6,
        model={"units": [8], "dropout": 0.0},
        training={"epochs": 5, "ensemble": 1, "patience": 2, "resume": False},
    )
    folds = backtest.build_folds(prepare(frame, cfg), cfg)
    fits = [train(folds[k], cfg, tmp_path / f"f{k}").model for k in (0, 2)]
    models = backtest.FoldModels([fits[1]] * 3, fits[0], [], "real")
    ev = evaluate(folds, models, cfg)
    chosen = dict(zip(ev.selection.series_ids, ev.selection.choices, strict=True))
    evidence = dict(zip(ev.selection.series_ids, ev.selection.evidence, strict=True))
    assert chosen["exact"] == "seasonal_naive"
    assert evidence["exact"]["metric"] == "mae"  # MASE is undefined: a zero seasonal scale
    assert evidence["exact"]["seasonal_naive"] < 1e-9 < evidence["exact"]["lstm"]
    # the mixture's figure: per series the chosen model on fold 0 (the LSTM's by the final model)
    final = backtest.score_fold(0, folds[0], fits[0])
    rows = [final.scores[c][s]["mae"] for s, c in enumerate(ev.selection.choices)]
    assert ev.scores["published"]["mae"] == pytest.approx(np.mean(rows))
    exact_row = ev.selection.series_ids.index("exact")
    assert final.scores["seasonal_naive"][exact_row]["mae"] < 1e-9


# ---------------------------------------------------------------- statistical candidates
class LevelModel:
    """Forecasts the scaled window's mean: no trend, no season (a network that learnt nothing)."""

    def predict(self, x, batch_size=None, verbose=0):
        return np.repeat(x[:, :, 0].mean(axis=1, keepdims=True), HORIZON, axis=1)


ALL = ("naive", "seasonal_naive", "drift", "ets", "theta")


def test_a_statistical_candidate_publishes_where_it_beats_the_lstm_and_the_baselines():
    from tasks.evaluation.statistical import ets

    kinds = {"trend": "trend", "walk": "walk"}
    cfg, folds, ev = _evaluate(kinds, LevelModel())
    assert "ets" not in ev.scores and "ets" not in ev.selection.counts  # not listed: not scored
    cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"candidates": ALL})})
    models = backtest.FoldModels([LevelModel()] * len(folds), LevelModel(), [], "fake")
    ev = evaluate(folds, models, cfg)
    chosen = dict(zip(ev.selection.series_ids, ev.selection.choices, strict=True))
    evidence = dict(zip(ev.selection.series_ids, ev.selection.evidence, strict=True))
    # trend x season is exactly a multiplicative ETS model: it wins there, by far
    assert chosen["trend"] == "ets"
    assert evidence["trend"]["ets"] < 0.1 * min(evidence["trend"][n] for n in ALL if n != "ets")
    assert ev.scores["selection"]["candidates"] == ["lstm", *ALL]
    assert ev.scores["selection"]["counts"]["ets"] >= 1
    assert sum(ev.scores["selection"]["counts"].values()) == 2
    # every listed candidate is scored on every fold and reported beside the baselines
    assert {"ets", "theta"} <= set(ev.scores) and {"ets", "theta"} <= set(ev.scores["latest_fold"])
    assert {"ets", "theta"} <= set(ev.folds["folds"]["fold_1"])
    trend = ev.selection.series_ids.index("trend")
    assert ev.scores["published"]["mase"] == pytest.approx(
        np.mean(
            [
                backtest.score_fold(0, folds[0], LevelModel(), ("lstm", c)).scores[c][s]["mase"]
                for s, c in enumerate(ev.selection.choices)
            ]
        )
    )
    # publish: the chosen candidate refitted on the whole history, with its own intervals
    choices, cals = selection.load_choices(ev.selection.to_json())
    assert set(cals) == set(ALL)
    out = future_forecasts(folds[0], LevelModel(), "1mo", ev.calibration, choices, cals)
    row = out.filter(pl.col(SERIES_ID) == "trend").sort("horizon_step")
    assert row["model"].unique().to_list() == ["ets"]
    history = folds[0].raw[folds[0].series(trend)]
    np.testing.assert_allclose(row["forecast"], ets(history, HORIZON, SEASON), rtol=1e-9)
    assert (row["lo_95"] < row["forecast"]).all() and (row["forecast"] < row["hi_95"]).all()


def test_the_candidate_list_is_validated_naming_the_key():
    from tasks.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="evaluate.candidates"):
        parse_config({"evaluate": {"candidates": ["naive", "arima"]}})
    with pytest.raises(ConfigError, match="evaluate.candidates holds duplicates"):
        parse_config({"evaluate": {"candidates": ["ets", "ets"]}})
    with pytest.raises(ConfigError, match="evaluate.candidates"):
        parse_config({"evaluate": {"candidates": []}})


# ---------------------------------------------------------------- short series
def _short_frame(lengths: dict[str, int]) -> pl.DataFrame:
    stamps = pl.datetime_range(
        datetime(2000, 1, 1), datetime(2030, 1, 1), "1mo", eager=True, time_unit="us"
    )
    return pl.concat(
        pl.DataFrame({SERIES_ID: sid, TIMESTAMP: stamps.head(n), VALUE: 100.0 + 5.0 * np.arange(n)})
        for sid, n in lengths.items()
    )


def test_short_series_join_the_selection_with_reasons_and_are_counted_apart():
    cfg, folds, ev = _evaluate({"trend": "trend", "seasonal": "seasonal", "walk": "walk"})
    assert cfg.lstm_history == 24 + 2 * HORIZON + 3 + 2 * 6
    before = ev.selection.summary(3)
    series = short.short_series(
        pl.concat([_frame({"trend": "trend"}), _short_frame({"s30": 30, "s4": 4})]),
        folds[0].series_ids.astype(str),
    )
    ev.selection.add_short(short.choose_all(short.values_of(series), cfg))
    after = ev.selection.summary(3)
    # the LSTM series' counts and fallback fraction are what the LSTM could serve: unchanged
    assert after["counts"] == before["counts"]
    assert after["fallback_fraction"] == before["fallback_fraction"]
    assert after["short_series"]["series"] == 2
    assert after["short_series"]["published_by"] == {"drift": 1, "naive": 1}
    # every series under published_by: model -> reason (without its numbers) -> series
    by = after["published_by"]
    assert sum(n for reasons in by.values() for n in reasons.values()) == 5
    assert by["drift"]["too short for the LSTM: best candidate on N folds"] == 1
    assert by["naive"]["too short for the LSTM and for any fold: naive by default"] == 1
    assert by["lstm"] == {"chosen on N folds": 1}
    assert after["reasons"] == {
        "chosen on N folds": 3,
        "too short for the LSTM and for any fold: naive by default": 1,
        "too short for the LSTM: best candidate on N folds": 1,
    }
    raw = ev.selection.to_json()
    assert raw["reasons"]["trend"] == "chosen on 2 folds"
    assert (
        raw["reasons"]["s30"] == "too short for the LSTM (30 < 51 steps): best candidate on 2 folds"
    )
    assert raw["choices"]["s4"] == "naive"
    # the gate reads the summary: the short series are reported beside the mixture
    ev.scores["selection"] = after
    decision = decide(ev.scores, GateConfig(max_mase=2.0, max_fallback_fraction=1.0))
    assert decision["selection"]["short_series"]["series"] == 2


def test_publish_forecasts_short_series_by_their_candidate_with_model_and_reason():
    cfg, folds, ev = _evaluate({"trend": "trend", "seasonal": "seasonal", "walk": "walk"})
    series = short.short_series(_short_frame({"s30": 30, "s4": 4}), [])
    ev.selection.add_short(short.choose_all(short.values_of(series), cfg))
    raw = ev.selection.to_json()
    choices, cals = selection.load_choices(raw)
    reasons = selection.load_reasons(raw)
    long = future_forecasts(
        folds[0], SeasonalDriftModel(), "1mo", ev.calibration, choices, cals, reasons
    )
    assert set(long["reason"]) == {"chosen on 2 folds"}
    transform = SeriesTransform(cfg.prepare.transform, cfg.prepare.scaler)
    out = short_forecasts(series, HORIZON, SEASON, "1mo", transform, choices, cals, reasons)
    assert out.columns == long.columns  # publish concatenates them
    by = {sid: part.sort("horizon_step") for (sid,), part in out.group_by(SERIES_ID)}
    assert by["s4"]["model"].unique().to_list() == ["naive"]
    assert by["s4"]["reason"].unique().to_list() == [raw["reasons"]["s4"]]
    np.testing.assert_allclose(by["s4"]["forecast"], [115.0] * HORIZON, rtol=1e-9)
    assert by["s4"][TIMESTAMP][0] == datetime(2000, 5, 1)  # the month after the last of 4
    np.testing.assert_allclose(
        by["s30"]["forecast"], 100.0 + 5.0 * np.arange(30, 30 + HORIZON), rtol=1e-9
    )
    assert (out["lo_95"] <= out["lo_80"]).all() and (out["lo_80"] <= out["forecast"]).all()
    assert (out["forecast"] <= out["hi_80"]).all() and (out["hi_80"] <= out["hi_95"]).all()
    assert (out["hi_95"] > out["lo_95"]).all()
    # without a calibration for the chosen candidate, publish refuses (as for the LSTM series)
    with pytest.raises(ValueError, match="no interval calibration"):
        short_forecasts(series, HORIZON, SEASON, "1mo", transform, choices, {}, reasons)


def _folds(per_fold: dict[int, dict[str, float]]) -> list:
    """Stand-ins of FoldResult for `choose` (it reads fold, scores and scales): one series whose
    MASE per model is given per fold."""
    from types import SimpleNamespace

    return [
        SimpleNamespace(fold=k, scales=np.ones(1), scores={m: [{"mase": v}] for m, v in f.items()})
        for k, f in per_fold.items()
    ]


OLDER_PREFER_NAIVE = {"lstm": 1.0, "naive": 0.9, "seasonal_naive": 2.0, "drift": 2.0}


def test_the_latest_fold_cannot_move_the_choice_however_lopsided():
    # Fold 0 says the LSTM is perfect and naive terrible; folds 1-2 prefer naive. A choice that
    # looked at fold 0 (r.fold >= 0) would publish the LSTM and report its leaked fold-0 score.
    folds = _folds(
        {0: {"lstm": 0.0, "naive": 10.0, "seasonal_naive": 10.0, "drift": 10.0},
         1: OLDER_PREFER_NAIVE, 2: OLDER_PREFER_NAIVE}
    )  # fmt: skip
    choices, evidence = selection.choose(folds, "mase")
    assert choices == ["naive"]
    assert evidence[0]["lstm"] == 1.0 and evidence[0]["naive"] == 0.9  # folds 1-2 only


def test_a_tie_on_the_older_folds_goes_to_the_candidate_not_the_lstm():
    tie = {"lstm": 1.0, "naive": 1.0, "seasonal_naive": 2.0, "drift": 2.0}
    folds = _folds({0: tie, 1: tie, 2: tie})
    assert selection.choose(folds, "mase")[0] == ["naive"]
    # Strictly better wins: a hair below the best candidate publishes the LSTM.
    better = dict(tie, lstm=0.999)
    assert selection.choose(_folds({0: tie, 1: better, 2: better}), "mase")[0] == ["lstm"]


def test_positive_floor_raises_only_what_has_no_log():
    history = np.array([300.0, 200.0, 155.0, 0.0])
    np.testing.assert_array_equal(
        selection.positive_floor(np.array([150.0, 1.0, 0.0, -3.0]), history),
        [150.0, 1.0, 155.0, 155.0],  # below the history's minimum stays; <= 0 -> smallest > 0
    )


def test_a_falling_series_is_published_below_its_smallest_value():
    # Under the log transform a forecast below the history's minimum is a valid forecast: it
    # was once published flat at that minimum (issue 23: M3 series forecast by theta and drift).
    cfg, _folds, ev = _evaluate({"trend": "trend", "seasonal": "seasonal", "walk": "walk"})
    stamps = pl.datetime_range(
        datetime(2000, 1, 1), datetime(2003, 1, 1), "1mo", eager=True, time_unit="us"
    ).head(30)
    falling = pl.DataFrame({SERIES_ID: "f", TIMESTAMP: stamps, VALUE: 300.0 - 5.0 * np.arange(30)})
    series = short.short_series(falling, [])
    _, cals = selection.load_choices(ev.selection.to_json())
    transform = SeriesTransform("log", cfg.prepare.scaler)
    out = short_forecasts(series, HORIZON, SEASON, "1mo", transform, {"f": "drift"}, cals)
    # drift: the last value, 155, falling by 5 a step
    np.testing.assert_allclose(
        out.sort("horizon_step")["forecast"], 155.0 - 5.0 * np.arange(1, HORIZON + 1), rtol=1e-9
    )

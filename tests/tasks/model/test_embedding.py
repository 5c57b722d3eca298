"""Series embedding (model.series_embedding > 0) end to end: a real tiny model trained by
tasks.model.train.train, then evaluated, published, rescored as a champion and exported, with every
caller feeding the series-index channel through tasks.model.forecast.model_inputs. Series "a" and
"b" have identical histories, so only the index channel can make their forecasts differ."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.evaluation import backtest
from tasks.evaluation.evaluate import BACKTEST_FORECAST, Champion, evaluate
from tasks.features.prepare import prepare
from tasks.model.forecast import (
    SeriesIndexError,
    load_model,
    model_inputs,
    predict_scaled,
    series_channel,
)
from tasks.model.network import ModelSpec, build_model, series_table_size
from tasks.publishing.forecasts import champion_meta, future_forecasts
from tests.tasks.evaluation.test_backtest import (
    HORIZON,
    LOOKBACK,
    SEASON,
    SeasonalNaiveModel,
    make_cfg,
)

LENGTH = 60
EMBEDDING = 3


def frame(series: tuple[str, ...] = ("a", "b", "c")) -> pl.DataFrame:
    """Monthly seasonal series; "a", "b" (and "d", a copy of "c") share their history."""
    t = np.arange(LENGTH)
    season = 1 + 0.2 * np.sin(2 * np.pi * t / SEASON)
    history = {
        "a": (100.0 + 2.0 * t) * season,
        "b": (100.0 + 2.0 * t) * season,
        "c": (300.0 - 1.0 * t) * np.roll(season, 3),
        "d": (300.0 - 1.0 * t) * np.roll(season, 3),
    }
    stamps = pl.datetime_range(
        datetime(2000, 1, 1), datetime(2030, 1, 1), "1mo", eager=True, time_unit="us"
    ).head(LENGTH)
    return pl.concat(
        pl.DataFrame({SERIES_ID: [sid] * LENGTH, TIMESTAMP: stamps, VALUE: history[sid]})
        for sid in series
    )


def embedding_cfg():
    return make_cfg(
        n_windows=2,
        step=4,
        refit=True,
        model={"units": [4], "dropout": 0.0, "series_embedding": EMBEDDING},
        training={"epochs": 2, "ensemble": 1, "batch_size": 32, "resume": False},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(cfg, folds, stage model): the train stage's model, fitted on fold 0 = the prepared data."""
    from tasks.model.train import train

    cfg = embedding_cfg()
    folds = backtest.build_folds(prepare(frame(), cfg), cfg)
    result = train(folds[0], cfg, tmp_path_factory.mktemp("ckpt"))
    return cfg, folds, result.model


def _champion(folds, model, with_meta: bool = True) -> Champion:
    """`model` published after training on `folds[0]` (as publish's champion_meta records it)."""
    meta = champion_meta(folds[0], "md5", "run", "2024-01-01T00:00:00Z") if with_meta else None
    return Champion(model=model, md5="md5", meta=meta)


# ---------------------------------------------------------------- no training needed
@pytest.mark.parametrize("kw", [{}, {"mode": "recursive"}])
def test_table_size_is_found_in_direct_recursive_and_ensemble_models(kw):
    from tasks.model.network import average_ensemble

    plain = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(4,), **kw))
    members = [
        build_model(
            ModelSpec(
                lookback=LOOKBACK, horizon=HORIZON, units=(4,), n_series=5, embedding_dim=2, **kw
            ),
            name=f"m{i}",
        )
        for i in range(2)
    ]
    assert series_table_size(plain) is None
    assert series_table_size(members[0]) == 5
    assert series_table_size(average_ensemble(members)) == 5


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_half_precision_reads_large_series_indices_exactly(precision: str):
    # float16 holds integers exactly only up to 2048 (bfloat16 up to 256): an index autocast to
    # the compute dtype turned 2049 into 2048, another series' vector.
    model = build_model(
        ModelSpec(
            lookback=LOOKBACK,
            horizon=HORIZON,
            units=(4,),
            n_series=2100,
            embedding_dim=2,
            precision=precision,
        )
    )
    layer = model.get_layer("series_embedding")
    table = np.zeros((2100, 2), "float32")
    table[2048], table[2049] = -1.0, 1.0
    layer.embedding.set_weights([table])
    x = np.zeros((1, LOOKBACK, 2), "float32")
    x[..., 1] = 2049.0
    np.testing.assert_array_equal(np.asarray(layer(x), dtype="float32"), [[1.0, 1.0]])


# ---------------------------------------------------------------- train -> publish
@pytest.mark.slow
def test_training_and_later_stages_feed_the_same_inputs(trained):
    cfg, folds, model = trained
    prepared = folds[0]
    assert model.input_shape == (None, LOOKBACK, 2)
    assert series_table_size(model) == len(prepared.series_ids) == 3
    # Exactly what train's tf.data pipeline fed (values + series index), window for window.
    starts = prepared.val_starts
    ds = prepared.geometry.dataset(prepared.values, starts, 64, index=series_channel(prepared))
    fed = np.concatenate([np.asarray(x) for x, _ in ds])
    later = model_inputs(prepared, starts, model)
    np.testing.assert_array_equal(later, fed)
    # Every window carries its own series' index: windows never cross series.
    series_of = np.searchsorted(prepared.offsets, starts, side="right") - 1
    np.testing.assert_array_equal(later[:, :, 1], np.repeat(series_of[:, None], LOOKBACK, 1))


@pytest.mark.slow
def test_publish_forecasts_each_series_with_its_own_vector(trained, tmp_path: Path):
    cfg, folds, model = trained
    prepared = folds[0]
    out = future_forecasts(prepared, model, "1mo")
    assert out.height == 3 * HORIZON
    assert out[SERIES_ID].to_list() == [s for s in "abc" for _ in range(HORIZON)]
    assert np.isfinite(out["forecast"].to_numpy()).all()
    fc = {sid: out.filter(pl.col(SERIES_ID) == sid)["forecast"].to_numpy() for sid in "abc"}
    # a and b have identical values: only the series channel can separate their forecasts.
    x = model_inputs(prepared, prepared.forecast_starts, model)
    np.testing.assert_array_equal(x[0, :, 0], x[1, :, 0])
    np.testing.assert_array_equal(x[:, :, 1], np.repeat([[0.0], [1.0], [2.0]], LOOKBACK, 1))
    assert np.abs(fc["a"] - fc["b"]).max() > 1e-4 * np.abs(fc["a"]).max()

    # Swapping the rows a and b read swaps their forecasts, and nothing else changes.
    scaled = predict_scaled(prepared, model, prepared.forecast_starts)
    swapped = predict_scaled(
        prepared, model, prepared.forecast_starts, series_index=np.array([1, 0, 2])
    )
    np.testing.assert_allclose(swapped, scaled[[1, 0, 2]], atol=1e-6)

    # The saved and reloaded model (what publish loads) forecasts the same.
    model.save(tmp_path / "model.keras")
    again = future_forecasts(prepared, load_model(tmp_path / "model.keras"), "1mo")
    np.testing.assert_allclose(again["forecast"].to_numpy(), out["forecast"].to_numpy(), rtol=1e-5)


@pytest.mark.slow
def test_a_model_without_a_row_for_a_series_is_a_clear_error(trained):
    cfg, _, model = trained
    four = prepare(frame(("a", "b", "c", "d")), cfg)  # index 3 is beyond the 3-row table
    with pytest.raises(SeriesIndexError, match=r"model\.series_embedding"):
        future_forecasts(four, model, "1mo")


# ---------------------------------------------------------------- evaluate
@pytest.mark.slow
def test_evaluate_refits_folds_and_rescores_an_embedding_champion(trained, tmp_path: Path):
    cfg, folds, model = trained
    models = backtest.fold_models(folds, cfg, lambda: model, tmp_path / "backtest")
    assert models.models[0] is model and len(models.trained) == 1  # fold 1 refitted
    assert series_table_size(models.models[1]) == 3

    ev = evaluate(folds, models, cfg)
    assert ev.scores["n_series"] == 3 and ev.scores["n_folds"] == 2
    assert all(np.isfinite(v) for v in ev.scores["lstm"].values())
    lstm = ev.plots[BACKTEST_FORECAST]["lstm"].to_numpy()
    assert lstm.shape == (2 * 3 * HORIZON,) and np.isfinite(lstm).all()
    # Every fold's model read the series channel: a and b (same history) got different forecasts.
    for k, r in enumerate(backtest.run_backtest(folds, models.models)):
        a, b = r.preds["lstm"][:2]
        assert np.abs(a - b).max() > 1e-4 * np.abs(a).max(), f"fold {k}"
    # The champion is the challenger itself (the same model and the same per-series choice, as
    # publish records it): rescored through the same inputs, it scores the same.
    same = _champion(folds, model)
    choices = dict(zip(ev.selection.series_ids, ev.selection.choices, strict=True))
    same.meta["choices"] = choices
    c = evaluate(folds, models, cfg, same).comparison
    assert c["status"] == "compared", c
    assert c["champion"] == pytest.approx(c["challenger"], rel=1e-6)


@pytest.mark.slow
def test_champion_on_a_smaller_series_set_reads_its_own_rows(trained):
    cfg, folds, model = trained
    champion = _champion(folds, model)
    # "a" dropped: b and c move to positions 0 and 1, but are rows 1 and 2 of the champion.
    fewer = backtest.build_folds(prepare(frame(("b", "c")), cfg), cfg)
    naive = SeasonalNaiveModel()
    ev = evaluate(fewer, backtest.FoldModels([naive] * 2, naive, [], "fake"), cfg, champion)
    assert ev.comparison["status"] == "compared", ev.comparison
    # Its scores on b and c are those of the full-data forecasts of b and c.
    for k in range(2):
        _, full = backtest.model_forecasts(folds[k], model)
        expected = backtest.mean_scores(backtest.score_series(fewer[k], full[1:]))
        got = ev.comparison["per_fold"][f"fold_{k}"]
        assert got["rmse"] == pytest.approx(expected["rmse"], rel=1e-5)
    # Read as rows 0 and 1 (a's and b's vectors), the forecasts would differ.
    _, wrong = backtest.model_forecasts(fewer[0], model)
    _, right = backtest.model_forecasts(fewer[0], model, np.array([1, 2]))
    assert np.abs(wrong - right).max() > 0


@pytest.mark.slow
def test_champion_without_a_vector_for_a_current_series_is_incompatible(trained):
    cfg, folds, model = trained
    more = backtest.build_folds(prepare(frame(("a", "b", "c", "d")), cfg), cfg)
    naive = SeasonalNaiveModel()
    fake = backtest.FoldModels([naive] * 2, naive, [], "fake")

    ev = evaluate(more, fake, cfg, _champion(folds, model))
    assert ev.comparison["status"] == "incompatible"
    assert "series_embedding" in ev.comparison["reason"] and "'d'" in ev.comparison["reason"]
    assert "per_fold" not in ev.comparison  # nothing rescored with a clipped, wrong vector

    # Without its metadata, which series its rows stand for is unknown: not guessed.
    ev = evaluate(folds, fake, cfg, _champion(folds, model, with_meta=False))
    assert ev.comparison["status"] == "incompatible"
    assert "metadata" in ev.comparison["reason"]


# ---------------------------------------------------------------- export
@pytest.mark.slow
def test_tflite_export_of_an_embedding_model_reads_the_index(trained, tmp_path: Path):
    from flows.export import FLOAT_TOLERANCE
    from tasks.model.export import export_tflite, predict_tflite

    _, folds, model = trained
    prepared = folds[0]
    x = model_inputs(prepared, prepared.forecast_starts, model)
    info = export_tflite(model, tmp_path / "m.tflite")
    ref = np.asarray(model.predict(x, verbose=0))
    assert np.abs(predict_tflite(info["path"], x) - ref).max() <= FLOAT_TOLERANCE
    with pytest.raises(ValueError, match=r"model\.series_embedding"):
        predict_tflite(info["path"], x[..., :1])

"""Covariates end to end in the task functions: params, ingest checks, the future file, prepare's
scaling and windows, the model's inputs, leak-freedom, MirroredStrategy and TFLite."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.covariates import PROMO_LIFT, synthetic
from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import parse_config
from tasks.errors import ConfigError, DataSourceError, DataValidationError
from tasks.features.prepare import prepare
from tasks.ingest import future_rows, ingest, validate
from tasks.ingest.covariate_checks import validate_future
from tests.waits import HANG_S

ROOT = Path(__file__).resolve().parents[3]

COVARIATES = {"past": ["temperature"], "future": ["promotion"], "static": ["store_type"]}
GEOMETRY = {
    "forecast": {"horizon": 12},
    "prepare": {"lookback": 24, "validation_steps": 12},
    "evaluate": {"n_windows": 1},
}


def config(covariates: dict | None = COVARIATES, **sections) -> object:
    raw = {k: dict(v) for k, v in GEOMETRY.items()}
    raw["data"] = {}
    if covariates:
        raw["data"]["covariates"] = covariates
        if covariates.get("future"):
            raw["data"]["future_path"] = "data/future.csv"
    for key, values in sections.items():
        raw.setdefault(key, {}).update(values)
    raw.setdefault("model", {}).update({"units": [8], "dropout": 0.0})
    raw.setdefault("training", {}).update({"epochs": 2, "ensemble": 1, "batch_size": 32})
    return parse_config(raw)


@pytest.fixture(scope="module")
def stores() -> tuple[pl.DataFrame, pl.DataFrame]:
    return synthetic(n_series=3, n_steps=72)


# ------------------------------------------------------------------------------ params
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"covariates": {"future": ["p"]}}, "data.covariates.future (p) needs data.future_path"),
        ({"future_path": "f.csv"}, "data.future_path is set but data.covariates.future is empty"),
        ({"covariates": {"past": ["p"], "static": ["p"]}}, "column 'p' is declared twice"),
        ({"covariates": {"past": ["value"]}}, "'value' is a column of the long format itself"),
        (
            {"covariates": {"future": ["p"]}, "future_path": "/abs/f.csv"},
            "data.future_path must be a path inside the repository",
        ),
    ],
)
def test_bad_covariate_params_are_refused_naming_the_key(data, message):
    with pytest.raises(ConfigError, match="data") as info:
        parse_config({"data": data})
    assert message in str(info.value)


def test_recursive_mode_refuses_covariates():
    with pytest.raises(ConfigError, match="model.mode 'recursive' does not read covariates"):
        parse_config({"data": {"covariates": {"past": ["t"]}}, "model": {"mode": "recursive"}})


# ------------------------------------------------------------------------------ ingest
def test_undeclared_missing_and_wrong_kind_columns_are_named(stores):
    history, _ = stores
    with pytest.raises(DataSourceError) as info:
        ingest(history, config({"past": ["temperature", "humidity"]}))
    msg = str(info.value)
    assert "column(s) promotion, store_type are not declared covariates" in msg
    assert "data.covariates.past declares humidity, missing from the source" in msg
    with pytest.raises(DataSourceError, match=r"future column\(s\) store_type are not numeric"):
        ingest(history, config({"future": ["store_type"], "past": ["temperature", "promotion"]}))


def test_non_finite_covariate_quarantines_its_series(stores):
    history, _ = stores
    bad = history.with_columns(
        pl.when((pl.col(SERIES_ID) == "store_01") & (pl.int_range(pl.len()).over(SERIES_ID) == 5))
        .then(float("nan"))
        .otherwise(pl.col("temperature"))
        .alias("temperature")
    )
    result = ingest(bad, config(data={"max_bad_series_fraction": 0.5}))
    assert sorted(set(result.frame[SERIES_ID])) == ["store_00", "store_02"]
    assert result.quarantined["check"].to_list() == ["covariate_finite"]


def test_a_static_covariate_must_be_constant_per_series(stores):
    history, _ = stores
    varying = history.with_columns(
        pl.when((pl.col(SERIES_ID) == "store_02") & (pl.int_range(pl.len()).over(SERIES_ID) > 50))
        .then(pl.lit("outlet"))
        .otherwise(pl.col("store_type"))
        .alias("store_type")
    )
    with pytest.raises(DataValidationError, match="'store_type' changes within series store_02"):
        ingest(varying, config())


def test_the_future_file_must_cover_exactly_the_horizon(stores, tmp_path):
    history, future = stores
    cfg = config()
    frame = validate(history, cfg)
    path = tmp_path / "future.csv"
    future.write_csv(path)
    rows = future_rows(path, frame, cfg)
    assert rows.height == 3 * 12 and rows.columns == [SERIES_ID, TIMESTAMP, "promotion"]
    assert rows[TIMESTAMP].min() == datetime(2016, 1, 1)  # the month after 72 from 2010-01

    cases = {
        "1 horizon step(s) missing for series store_01": future.filter(
            ~((pl.col(SERIES_ID) == "store_01") & (pl.col(TIMESTAMP) == date(2016, 12, 1)))
        ),
        "outside the horizon steps": pl.concat(
            [future, future.head(1).with_columns(pl.lit(date(2017, 1, 1)).alias(TIMESTAMP))]
        ),
        "future covariate 'promotion': 1 value(s) missing or not finite": future.with_columns(
            pl.when(pl.int_range(pl.len()) == 3)
            .then(None)
            .otherwise("promotion")
            .alias("promotion")
        ),
        "given twice": pl.concat([future, future.head(1)]),
    }
    for message, bad in cases.items():
        with pytest.raises(DataValidationError) as info:
            validate_future(bad, frame, cfg)
        assert message in str(info.value), message
    (tmp_path / "extra.csv").write_text(future.with_columns(pl.lit(1.0).alias(VALUE)).write_csv())
    with pytest.raises(DataSourceError, match=r"column\(s\) value that are not future covariates"):
        future_rows(tmp_path / "extra.csv", frame, cfg)


def test_the_ingest_stage_writes_nothing_on_a_bad_future_file(
    stores, tmp_path, monkeypatch, capsys
):
    import yaml

    from flows.stages import __main__ as stages

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORECAST_PREFECT", "never")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    history, future = stores
    history.write_csv("raw.csv")
    future.head(30).write_csv("future.csv")  # store_02's plan stops after 6 of 12 months
    params = config().model_dump(mode="json")
    params["data"].update(path="raw.csv", future_path="future.csv")
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    earlier = Path("data/validated/series.parquet")
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"old validated bytes")

    assert stages.main(["ingest"]) == 2

    assert "6 horizon step(s) missing for series store_02" in capsys.readouterr().err
    assert earlier.read_bytes() == b"old validated bytes"
    assert not Path("data/validated/future.parquet").exists()

    future.write_csv("future.csv")
    assert stages.main(["ingest"]) == 0
    written = pl.read_parquet("data/validated/future.parquet")
    assert written.height == 36 and written.columns == [SERIES_ID, TIMESTAMP, "promotion"]
    assert json.loads(Path("metrics/ingest.json").read_text())["future_rows"] == 36


# ------------------------------------------------------------------------------ prepare
def _prepared(history, future, cfg=None):
    cfg = cfg or config()
    frame = validate(history, cfg)
    return prepare(frame, cfg, validate_future(future, frame, cfg))


def test_scaling_is_global_and_fitted_on_the_training_parts_only(stores):
    history, future = stores
    p = _prepared(history, future)
    c = p.covariates
    lengths = np.diff(p.offsets)
    position = np.arange(p.offsets[-1]) - np.repeat(p.offsets[:-1], lengths)
    train = position < np.repeat(p.train_end - p.offsets[:-1], lengths)
    temp = c.past_raw[:, 0]
    assert c.stats["temperature"]["mean"] == pytest.approx(temp[train].mean())
    assert c.stats["temperature"]["scale"] == pytest.approx(temp[train].std())
    np.testing.assert_allclose(
        c.past[:, 0], (temp - temp[train].mean()) / temp[train].std(), rtol=1e-5, atol=1e-5
    )
    # The test tails' covariates do not move the scaling.
    changed = history.with_columns(
        pl.when(pl.int_range(pl.len()).over(SERIES_ID) >= 60)
        .then(pl.col("temperature") * 100)
        .otherwise(pl.col("temperature"))
    )
    assert _prepared(changed, future).covariates.stats == c.stats
    # Static: one-hot of the store type, in the order of the sorted categories.
    assert c.static_features == ("store_type=mall", "store_type=street")
    np.testing.assert_array_equal(c.static, [[1, 0], [0, 1], [1, 0]])


def test_covariate_windows_are_the_series_own_steps(stores):
    history, future = stores
    p = _prepared(history, future)
    c, (lookback, horizon) = p.covariates, (p.geometry.lookback, p.geometry.horizon)
    starts = np.concatenate([p.train_starts, p.val_starts, p.test_starts, p.forecast_starts])
    past = c.past_windows(starts, lookback)
    fut = c.future_windows(starts, p.offsets, lookback, horizon, p.series_ids)
    for i, a in enumerate(starts):
        s = int(np.searchsorted(p.offsets, a, side="right") - 1)
        assert p.offsets[s] <= a and a + lookback <= p.offsets[s + 1]  # never across series
        np.testing.assert_array_equal(past[i], c.recurrent[a : a + lookback])
        if a + lookback + horizon <= p.offsets[s + 1]:
            np.testing.assert_array_equal(fut[i], c.future[a + lookback : a + lookback + horizon])
        else:  # the forecast from the series' end reads the future file
            np.testing.assert_array_equal(fut[i], c.tail[s])
    # The future file's plan, scaled like the history.
    plan = future.filter(pl.col(SERIES_ID) == "store_01")["promotion"].to_numpy()
    stats = c.stats["promotion"]
    np.testing.assert_allclose(c.tail[1, :, 0], (plan - stats["mean"]) / stats["scale"], atol=1e-6)


def test_saved_arrays_load_to_the_same_inputs(stores, tmp_path):
    from tasks.features.prepare import Prepared

    history, future = stores
    p = _prepared(history, future)
    p.save_arrays(tmp_path / "a.npz")
    p.transform.save(tmp_path / "s.npz")
    q = Prepared.load(tmp_path / "a.npz", tmp_path / "s.npz")
    for name in ("recurrent", "future", "tail", "static"):
        np.testing.assert_array_equal(getattr(q.covariates, name), getattr(p.covariates, name))
    assert q.covariates.used() == p.covariates.used() == COVARIATES


# ------------------------------------------------------------------------------ model
@pytest.fixture(scope="module")
def trained(stores, tmp_path_factory):
    """A tiny model trained on the stores with their covariates (2 epochs: the tests below
    need a model that reads every input, not a good one)."""
    from tasks.model.train import train

    history, future = stores
    cfg = config()
    p = _prepared(history, future, cfg)
    return cfg, p, train(p, cfg, tmp_path_factory.mktemp("ckpt")).model


def _forecast(p, model, starts):
    from tasks.model.forecast import predict_scaled

    return predict_scaled(p, model, starts)


@pytest.mark.slow  # trains a (tiny) model
def test_model_inputs_and_output(trained):
    from tasks.model.forecast import model_inputs

    cfg, p, model = trained
    assert [tuple(t.shape[1:]) for t in model.inputs] == [(24, 3), (12, 1), (2,)]
    x = model_inputs(p, p.forecast_starts, model)
    assert [a.shape for a in x] == [(3, 24, 3), (3, 12, 1), (3, 2)]
    assert _forecast(p, model, p.forecast_starts).shape == (3, 12)


@pytest.mark.slow  # trains a (tiny) model
def test_no_leak_past_covariates_after_the_origin_change_no_forecast(stores, trained):
    """The backtest's test window ends at each series' origin (train_end): changing the past
    covariate (and the value) at or after it, and re-preparing, leaves every forecast as it was;
    changing it inside the window does change them (so the test can fail)."""
    history, future = stores
    cfg, p, model = trained
    before = _forecast(p, model, p.test_starts)
    step = pl.int_range(pl.len()).over(SERIES_ID)
    after_origin = step >= 60  # 72 steps, horizon 12: the origin is step 60 of every series
    late = history.with_columns(
        pl.when(after_origin).then(pl.col("temperature") + 30).otherwise("temperature"),
        pl.when(after_origin).then(pl.col(VALUE) * 3).otherwise(VALUE),
    )
    p_late = _prepared(late, future, cfg)
    np.testing.assert_array_equal(_forecast(p_late, model, p_late.test_starts), before)
    inside = history.with_columns(
        pl.when(step.is_between(50, 59)).then(pl.col("temperature") + 30).otherwise("temperature")
    )
    p_inside = _prepared(inside, future, cfg)
    assert np.abs(_forecast(p_inside, model, p_inside.test_starts) - before).max() > 1e-4


@pytest.mark.slow  # trains a (tiny) model
def test_future_covariates_inside_the_horizon_change_the_forecast(stores, trained):
    history, future = stores
    cfg, p, model = trained
    # Backtest: the promotions of the fold's horizon are read from the history.
    flipped = history.with_columns(
        pl.when(pl.int_range(pl.len()).over(SERIES_ID) >= 60)
        .then(1 - pl.col("promotion"))
        .otherwise("promotion")
        .alias("promotion")
    )
    p_flip = _prepared(flipped, future, cfg)
    diff = np.abs(_forecast(p_flip, model, p_flip.test_starts) - _forecast(p, model, p.test_starts))
    assert diff.min(axis=1).max() > 0 and diff.max() > 1e-4
    # Publish: the plan of the future file after the last observation.
    plan = future.with_columns((1 - pl.col("promotion")).alias("promotion"))
    p_plan = _prepared(history, plan, cfg)
    base = _forecast(p, model, p.forecast_starts)
    assert np.abs(_forecast(p_plan, model, p_plan.forecast_starts) - base).max() > 1e-4


@pytest.mark.slow  # trains a (tiny) model
def test_tflite_export_reads_the_three_inputs(trained, tmp_path):
    from tasks.model.export import export_tflite, predict_tflite
    from tasks.model.forecast import model_inputs

    _, p, model = trained
    x = model_inputs(p, p.forecast_starts, model)
    info = export_tflite(model, tmp_path / "m.tflite")
    assert info["bytes"] > 0
    keras_out = np.asarray(model.predict(x, verbose=0))
    assert np.abs(predict_tflite(tmp_path / "m.tflite", x) - keras_out).max() < 1e-4
    with pytest.raises(ValueError, match="the model reads 3 input"):
        predict_tflite(tmp_path / "m.tflite", x[0])


@pytest.mark.slow  # trains a (tiny) model
def test_a_model_without_covariates_refuses_covariate_data(stores, trained, tmp_path):
    from tasks.model.forecast import model_inputs
    from tasks.model.train import train

    history, future = stores
    cfg = config(None)
    plain = prepare(validate(history.select(SERIES_ID, TIMESTAMP, VALUE), cfg), cfg)
    model = train(plain, cfg, tmp_path).model
    _, p, _ = trained
    with pytest.raises(ValueError, match="trained with other data.covariates; retrain it"):
        model_inputs(p, p.test_starts, model)


@pytest.mark.slow  # trains a (tiny) model
def test_a_champion_of_other_covariates_is_incompatible_not_rescored(trained):
    from tasks.evaluation.evaluate import Champion, _incompatible

    cfg, p, model = trained
    assert _incompatible(Champion(model, "m" * 32, None), cfg, p.series_ids) is None
    # Without metadata (a champion from before it listed them): its inputs tell.
    reason = _incompatible(Champion(model, "m" * 32, None), config(None), p.series_ids)
    assert "champion reads 3 input(s) with 3 window channel(s)" in reason
    assert "data.covariates need 1 with 1" in reason
    meta = {"covariates": {"past": [], "future": [], "static": []}}
    reason = _incompatible(Champion(model, "m" * 32, meta), cfg, p.series_ids)
    assert reason.startswith("the params changed what a forecast means: covariates")


# ------------------------------------------------------------------------------ strategy
MIRRORED = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    import numpy as np
    sys.path.insert(0, {root!r})
    from benchmarks.covariates import synthetic
    from tests.tasks.features.test_covariates import _prepared, config
    from tasks.model.forecast import predict_scaled
    from tasks.model.train import train

    history, future = synthetic(n_series=3, n_steps=72)
    cfg = config(training={{"replicas": 2, "epochs": 2}})
    p = _prepared(history, future, cfg)
    result = train(p, cfg, Path(tempfile.mkdtemp()))
    pred = predict_scaled(p, result.model, p.forecast_starts)
    print(json.dumps({{"replicas": result.summary["replicas"],
                       "val_loss": result.summary["best_val_loss"],
                       "shape": list(pred.shape), "finite": bool(np.isfinite(pred).all())}}))
    """
)


@pytest.mark.slow  # trains a (tiny) model
def test_training_with_covariates_under_mirrored_strategy_on_2_replicas():
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED.format(root=str(ROOT))],
        capture_output=True, text=True, timeout=HANG_S, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["shape"] == [3, 12] and out["finite"]
    assert all(np.isfinite(v) for v in out["val_loss"])


def test_the_synthetic_promotion_lift_is_what_the_generator_says():
    """The benchmark's known effect: promotion months sell (1 + PROMO_LIFT) times the others,
    other things equal (noise 3 %: the ratio of means over many months is within 5 %)."""
    history, _ = synthetic(n_series=8, n_steps=120)
    ratio = (
        history.with_columns((pl.col(VALUE) / pl.col(VALUE).mean().over(SERIES_ID)).alias("r"))
        .group_by("promotion")
        .agg(pl.col("r").mean())
        .sort("promotion")["r"]
        .to_list()
    )
    assert ratio[1] / ratio[0] == pytest.approx(1 + PROMO_LIFT, rel=0.05)

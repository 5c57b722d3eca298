"""The model definition: shapes, cuDNN-eligible layer settings, the seasonal base, save/load."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import keras
import numpy as np
import pytest

from tasks.config import Config, parse_config
from tasks.errors import ConfigError
from tasks.model.network import ModelSpec, SeasonalBase, average_ensemble, build_model
from tasks.model.spec import CELLS, Cell

ROOT = Path(__file__).resolve().parents[3]

LOOKBACK, HORIZON, M = 36, 24, 12


def _x(n: int = 5, lookback: int = LOOKBACK, features: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, lookback, features)).astype("float32")


@pytest.mark.parametrize(
    ("cell", "bidirectional", "units"),
    [("lstm", False, (32, 16)), ("gru", False, (8,)), ("lstm", True, (8, 4, 4))],
)
def test_output_shape(cell: str, bidirectional: bool, units: tuple[int, ...]):
    model = build_model(
        ModelSpec(
            lookback=LOOKBACK, horizon=HORIZON, cell=cell, units=units, bidirectional=bidirectional
        )
    )
    assert model.output_shape == (None, HORIZON)
    assert np.asarray(model.predict(_x(), verbose=0)).shape == (5, HORIZON)
    rnns = [layer for layer in model.layers if layer.name.startswith(("rnn_", "bidirectional_"))]
    assert len(rnns) == len(units)
    # return_sequences on all but the last recurrent layer
    inner = [r.forward_layer if bidirectional else r for r in rnns]
    assert [r.return_sequences for r in inner] == [True] * (len(units) - 1) + [False]


def test_multiple_features_use_feature_zero_for_the_seasonal_base():
    model = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, n_features=3, units=(4,)))
    assert model.input_shape == (None, LOOKBACK, 3)
    assert np.asarray(model.predict(_x(features=3), verbose=0)).shape == (5, HORIZON)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_default_layers_are_cudnn_eligible(cell: str):
    model = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, cell=cell))
    rnns = [layer for layer in model.layers if layer.name.startswith("rnn_")]
    assert len(rnns) == 2
    for layer in rnns:
        cfg = layer.get_config()
        assert cfg["activation"] == "tanh"
        assert cfg["recurrent_activation"] == "sigmoid"
        assert cfg["recurrent_dropout"] == 0
        assert cfg["unroll"] is False
        assert cfg["use_bias"] is True
        if cell == "gru":
            assert cfg["reset_after"] is True


def test_layer_names_are_stable():
    names = [
        layer.name for layer in build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON)).layers
    ]
    assert names == [
        "input", "rnn_1", "dropout_1", "rnn_2", "dropout_2", "head", "seasonal_base", "forecast",
    ]  # fmt: skip


def test_seasonal_base_tiles_the_last_season():
    x = _x(n=3)
    out = np.asarray(SeasonalBase(LOOKBACK, HORIZON, M)(x))
    last_season = x[:, -M:, 0]
    np.testing.assert_array_equal(out, np.concatenate([last_season, last_season], axis=1))
    # a horizon shorter than a season takes the first steps of the last season
    short = np.asarray(SeasonalBase(LOOKBACK, 5, M)(x))
    np.testing.assert_array_equal(short, x[:, LOOKBACK - M : LOOKBACK - M + 5, 0])


def test_zero_head_gives_the_seasonal_naive_forecast():
    model = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON))
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = _x()
    expected = np.tile(x[:, -M:, 0], (1, 2))
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected, atol=0)


def test_without_seasonal_residual_the_zero_head_predicts_zero():
    model = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, seasonal_residual=False))
    assert "seasonal_base" not in [layer.name for layer in model.layers]
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    np.testing.assert_array_equal(np.asarray(model.predict(_x(), verbose=0)), 0.0)


def test_lookback_shorter_than_a_season_raises():
    with pytest.raises(ValueError, match="shorter than season_length"):
        build_model(ModelSpec(lookback=8, horizon=HORIZON, season_length=12))
    with pytest.raises(ValueError, match="shorter than season_length"):
        SeasonalBase(8, HORIZON, 12)
    # without the seasonal residual a short lookback is fine
    assert build_model(
        ModelSpec(lookback=8, horizon=HORIZON, season_length=12, seasonal_residual=False)
    ).output_shape == (
        None,
        HORIZON,
    )


def test_unknown_cell_raises():
    with pytest.raises(ValueError, match="unknown cell"):
        ModelSpec(lookback=LOOKBACK, horizon=HORIZON, cell="rnn")


# ---------------------------------------------------------------- the spec and its registries
def test_spec_from_config_carries_every_model_knob():
    cfg = parse_config(
        {
            "prepare": {"lookback": 30},
            "forecast": {"horizon": 6},
            "data": {"season_length": 4},
            "model": {
                "cell": "gru", "units": [8, 4], "dropout": 0.2, "bidirectional": True,
                "seasonal_residual": False, "relative_inputs": False, "attention": True,
                "mode": "recursive", "series_embedding": 3,
            },
            "training": {"mixed_precision": "mixed_bfloat16"},
        }
    )  # fmt: skip
    spec = ModelSpec.from_config(cfg, n_features=2, n_series=5)
    assert spec == ModelSpec(
        lookback=30, horizon=6, n_features=2, cell="gru", units=(8, 4), dropout=0.2,
        bidirectional=True, seasonal_residual=False, season_length=4, relative_inputs=False,
        attention=True, mode="recursive", n_series=5, embedding_dim=3, precision="mixed_bfloat16",
    )  # fmt: skip
    # The prepared data's geometry wins over the config's when given.
    geometry = {"lookback": 12, "horizon": 3, "season_length": 2}
    assert ModelSpec.from_config(cfg, n_series=5, **geometry).lookback == 12
    with pytest.raises(FrozenInstanceError):
        spec.cell = "lstm"  # type: ignore[misc]


def test_spec_from_default_config_builds_the_default_layers():
    spec = ModelSpec.from_config(Config())
    names = [layer.name for layer in build_model(spec).layers]
    assert names[:6] == ["input", "relative_to_last", "rnn_1", "dropout_1", "rnn_2", "dropout_2"]


def test_unknown_cell_is_rejected_by_the_config_with_the_dotted_key():
    with pytest.raises(ConfigError) as info:
        parse_config({"model": {"cell": "rnn"}})
    assert "params.yaml: model.cell: Input should be 'lstm' or 'gru'" in str(info.value)
    with pytest.raises(ConfigError, match="model.mode: Input should be 'direct' or 'recursive'"):
        parse_config({"model": {"mode": "seq2seq"}})
    with pytest.raises(ConfigError, match="training.mixed_precision: Input should be"):
        parse_config({"training": {"mixed_precision": "float16"}})


def test_the_cell_registry_drives_config_and_model(monkeypatch):
    """A cell is one registry entry: the config accepts it, build_model builds it with its
    options; before the entry the config refuses the name."""
    with pytest.raises(ConfigError, match="model.cell"):
        parse_config({"model": {"cell": "lstm_nfb"}})
    monkeypatch.setitem(CELLS, "lstm_nfb", Cell("LSTM", {"unit_forget_bias": False}))
    cfg = parse_config({"model": {"cell": "lstm_nfb", "units": [4]}})
    model = build_model(ModelSpec.from_config(cfg))
    layer = model.get_layer("rnn_1")
    assert isinstance(layer, keras.layers.LSTM)
    assert layer.get_config()["unit_forget_bias"] is False
    assert np.asarray(model.predict(_x(), verbose=0)).shape == (5, HORIZON)


def test_the_config_imports_no_keras():
    code = (
        "import sys; import tasks.config; "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'keras loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _perturb_head(model: keras.Model, seed: int) -> None:
    # Non-zero head so the round trip compares more than the seasonal base.
    rng = np.random.default_rng(seed)
    head = model.get_layer("head")
    head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])


def test_save_load_round_trip(tmp_path: Path):
    model = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, cell="gru", units=(8, 4)))
    _perturb_head(model, 1)
    x = _x()
    before = np.asarray(model.predict(x, verbose=0))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), before)
    assert isinstance(loaded.get_layer("seasonal_base"), SeasonalBase)


def test_ensemble_averages_members_and_round_trips(tmp_path: Path):
    members = [
        build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(4,))) for _ in range(3)
    ]
    for i, m in enumerate(members):
        _perturb_head(m, i)
    x = _x()
    outs = [np.asarray(m.predict(x, verbose=0)) for m in members]
    ensemble = average_ensemble(members)
    assert len(ensemble.inputs) == 1
    pred = np.asarray(ensemble.predict(x, verbose=0))
    np.testing.assert_allclose(pred, np.mean(outs, axis=0), rtol=1e-6, atol=1e-6)
    assert np.abs(outs[0] - outs[1]).max() > 1e-3  # members differ, so the mean is a real test

    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), pred)
    assert [layer.name for layer in loaded.layers][1:4] == ["member_0", "member_1", "member_2"]


def test_ensemble_of_one_is_the_member():
    member = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(4,)))
    assert average_ensemble([member]) is member
    with pytest.raises(ValueError):
        average_ensemble([])


# ---------------------------------------------------------------- the model family
def test_model_code_is_pure_keras():
    import ast

    tree = ast.parse(
        (Path(__file__).resolve().parents[3] / "tasks" / "model" / "network.py").read_text()
    )
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}  # fmt: skip
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module}  # fmt: skip
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "tensorflow" not in imported and "tf" not in names
    assert "keras" in imported


@pytest.mark.parametrize(
    "kw",
    [
        {"attention": True},
        {"attention": True, "bidirectional": True},
        {"mode": "recursive"},
        {"mode": "recursive", "attention": True, "cell": "gru"},
    ],
)
def test_attention_and_recursive_shapes_and_round_trip(kw: dict, tmp_path: Path):
    model = build_model(
        ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(8, 4), relative_inputs=True, **kw)
    )
    x = _x()
    # Called eagerly: `predict` would trace the recursive loop into a graph twice (8 s each), and
    # the round trip is what is checked here (`predict` on recursive models: the tests below).
    pred = np.asarray(model(x, training=False))
    assert pred.shape == (5, HORIZON)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), pred)


def test_attention_reads_every_step_of_the_last_layer():
    model = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(8,), attention=True))
    assert model.get_layer("rnn_1").return_sequences is True
    assert model.get_layer("attention").output.shape == (None, 16)  # last state + context


def test_recursive_zero_head_feeds_back_the_seasonal_naive_forecast():
    model = build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(4,), mode="recursive"))
    head = model.get_layer("recursive").head
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = _x()
    # Each step repeats the value one season back, which after `season_length` steps is itself
    # a fed-back prediction: the last season, tiled.
    expected = np.tile(x[:, -M:, 0], (1, 2))
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected, atol=1e-6)


def test_recursive_forecasts_depend_on_fed_back_steps():
    model = build_model(
        ModelSpec(
            lookback=LOOKBACK, horizon=3, units=(4,), mode="recursive", seasonal_residual=False
        )
    )
    layer = model.get_layer("recursive")
    x = _x(n=2)
    base = np.asarray(model.predict(x, verbose=0))
    # Change only the head's bias: step 1 shifts by the change, later steps by more than that
    # would if the steps were independent (they read the shifted predictions).
    w, b = layer.head.get_weights()
    layer.head.set_weights([w, b + 1.0])
    moved = np.asarray(model.predict(x, verbose=0)) - base
    np.testing.assert_allclose(moved[:, 0], 1.0, atol=1e-5)
    assert np.abs(moved[:, 1:] - 1.0).max() > 1e-4


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_variables_head_and_output_float32(precision: str):
    model = build_model(
        ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(8,), precision=precision)
    )
    assert all(w.dtype == "float32" for w in model.weights)
    assert model.get_layer("rnn_1").compute_dtype == precision.removeprefix("mixed_")
    assert model.get_layer("head").compute_dtype == "float32"
    out = model.predict(_x(), verbose=0)
    assert out.dtype == np.float32


def test_series_embedding_reads_the_index_channel():
    model = build_model(
        ModelSpec(lookback=LOOKBACK, horizon=HORIZON, units=(4,), n_series=3, embedding_dim=2)
    )
    assert model.input_shape == (None, LOOKBACK, 2)
    table = model.get_layer("series_embedding").embedding
    table.set_weights([np.arange(6, dtype="float32").reshape(3, 2)])
    _perturb_head(model, 0)
    x = np.repeat(_x(n=1), 2, axis=0)
    index = np.zeros((2, LOOKBACK, 1), "float32")
    index[1] = 2.0  # same values, another series
    out = np.asarray(model.predict(np.concatenate([x, index], -1), verbose=0))
    assert np.abs(out[0] - out[1]).max() > 1e-3
    with pytest.raises(ValueError, match="n_series"):
        build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, embedding_dim=2))


def test_unknown_mode_or_precision_raises():
    with pytest.raises(ValueError, match="unknown mode"):
        build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, mode="seq2seq"))
    with pytest.raises(ValueError, match="unknown precision"):
        build_model(ModelSpec(lookback=LOOKBACK, horizon=HORIZON, precision="float16"))

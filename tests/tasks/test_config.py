"""tasks.config: defaults, the repo's params.yaml, and every kind of bad params naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.stages import __main__ as stages
from tasks.config import Config, load_config, parse_config
from tasks.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_parse():
    cfg = parse_config({})
    assert cfg.model_dump() == Config().model_dump()
    assert cfg.data.frequency == "1mo"
    assert cfg.min_history == 36 + 2 * 24 + 12


def test_repo_params_load():
    cfg = load_config(ROOT / "params.yaml")
    assert cfg.source == ROOT / "params.yaml"
    assert cfg.data.path == "data/raw/airpassengers.csv"
    assert cfg.model.units == (32, 16)
    assert cfg.prepare.transform == "log"


def test_defaults_round_trip_through_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(Config().model_dump(mode="json")))
    assert load_config(path).model_dump() == Config().model_dump()


@pytest.mark.parametrize(
    ("raw", "key", "reason"),
    [
        ({"training": {"epoch": 10}}, "training.epoch", "unknown key"),
        ({"trainig": {}}, "trainig", "unknown key"),
        ({"training": {"epochs": "ten"}}, "training.epochs", "valid integer"),
        ({"prepare": {"lookback": 0}}, "prepare.lookback", "greater than or equal to 1"),
        ({"forecast": {"horizon": 0}}, "forecast.horizon", "greater than or equal to 1"),
        ({"model": {"dropout": 1.5}}, "model.dropout", "less than 1"),
        ({"model": {"cell": "rnn"}}, "model.cell", "'lstm' or 'gru'"),
        ({"data": {"fill_gaps": "zero"}}, "data.fill_gaps", "'error'"),
        ({"data": {"frequency": "monthly"}}, "data.frequency", "pattern"),
    ],
)
def test_bad_value_names_the_dotted_key(raw, key, reason):
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    msg = str(info.value)
    assert f"params.yaml: {key}: " in msg
    assert reason in msg


def test_min_not_below_max():
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"min_value": 5, "max_value": 5}})
    msg = str(info.value)
    assert "data.min_value (5.0) must be below data.max_value (5.0)" in msg


@pytest.mark.parametrize("min_value", [-1.0, None])
def test_log_transform_needs_nonnegative_min(min_value):
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"min_value": min_value}, "prepare": {"transform": "log"}})
    assert "prepare.transform" in str(info.value)
    assert "data.min_value" in str(info.value)


def test_negative_min_is_fine_without_log():
    cfg = parse_config({"data": {"min_value": -1.0}, "prepare": {"transform": "none"}})
    assert cfg.data.min_value == -1.0


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read params file .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  path: [unclosed\n")
    with pytest.raises(ConfigError, match="params.yaml: not valid YAML"):
        load_config(path)


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_config(path)


def test_empty_file_means_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    assert load_config(path).model_dump() == Config().model_dump()


def test_stage_with_bad_params_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORECAST_PREFECT", "never")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"training": {"epochs": "ten"}}))

    assert stages.main(["ingest", "--params", str(bad)]) == 2

    assert "training.epochs" in capsys.readouterr().err
    assert not (tmp_path / "data" / "validated").exists()
    assert not (tmp_path / "metrics").exists()

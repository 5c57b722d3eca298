"""tasks.config: defaults, the repo's params.yaml, and every kind of bad params naming its key."""

from __future__ import annotations

import re
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
    assert cfg.lstm_history == 36 + 2 * 24 + 12
    assert cfg.min_history == 1  # naive's one observation


def test_repo_params_load():
    cfg = load_config(ROOT / "params.yaml")
    assert cfg.source == ROOT / "params.yaml"
    assert cfg.data.path == "data/raw/airpassengers.csv"
    assert cfg.model.units == (32, 16)
    # issue 22: the data-dependent knobs are derived from the data (tasks/config/auto.py), the
    # gate judges skill over seasonal naive, and both are the code defaults too.
    assert cfg.prepare.transform == "auto"
    assert cfg.prepare == Config().prepare
    assert cfg.training.epochs == cfg.training.batch_size == cfg.training.ensemble == "auto"
    assert cfg.training.windows_per_epoch == cfg.evaluate.step == "auto"
    assert cfg.gate.max_mase is None and cfg.gate.mase_ratio_below == 1.0
    assert cfg.gate == Config().gate


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
        ({"training": {"loss_weights": "mae"}}, "training.loss_weights", "'none' or 'mase'"),
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


@pytest.mark.parametrize("transform", ["auto", "asinh"])
def test_auto_and_asinh_take_any_value(transform):
    # auto takes the log only of a series whose values are all positive (tasks/features/scaling.py)
    cfg = parse_config({"data": {"min_value": None}, "prepare": {"transform": transform}})
    assert cfg.prepare.transform == transform


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


def test_an_empty_file_is_refused_and_an_empty_mapping_means_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# nothing but a comment\n")
    with pytest.raises(ConfigError, match="params.yaml is empty: give at least one section"):
        load_config(path)
    path.write_text("{}\n")
    assert load_config(path).model_dump() == Config().model_dump()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("training:\n  epochs: 5\ntraining:\n  epochs: 7\n", "'training' appears twice"),
        (
            "training:\n  epochs: 5\n  epochs: 7\n",
            "'epochs' appears twice in one mapping (lines 2 and 3)",
        ),
    ],
)
def test_a_duplicated_key_is_refused_with_the_key_named(tmp_path, text, line):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(line)):
        load_config(path)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"training": {"epochs": "2"}}, "training.epochs"),
        ({"training": {"learning_rate": "0.01"}}, "training.learning_rate"),
        ({"model": {"units": ["32"]}}, "model.units.0"),
        ({"model": {"bidirectional": "yes"}}, "model.bidirectional"),
    ],
)
def test_quoted_values_are_not_coerced(raw, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        parse_config(raw)
    # Real YAML numbers and lists still load: ints where floats are asked, lists for tuples.
    cfg = parse_config({"training": {"learning_rate": 1, "epochs": 2}, "model": {"units": [4, 2]}})
    assert cfg.training.learning_rate == 1.0 and cfg.model.units == (4, 2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"publish": {"store": "/tmp/forecasts.sqlite"}}, "publish.store: must be a path inside"),
        ({"publish": {"export": "../out.parquet"}}, "publish.export: must be a path inside"),
        ({"orchestration": {"run_log": "/var/log/x.jsonl"}}, "orchestration.run_log: must be"),
        ({"data": {"path": "/mnt/raw.csv"}}, "data.path must be a path inside the repository"),
        ({"data": {"path": "data/../../raw.csv"}}, "set data.allow_outside_repo: true"),
    ],
)
def test_paths_must_stay_inside_the_repository(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(raw)


def test_a_source_outside_the_repository_needs_the_opt_in():
    cfg = parse_config({"data": {"path": "/mnt/raw.csv", "allow_outside_repo": True}})
    assert cfg.data.path == "/mnt/raw.csv"


def test_the_pipeline_takes_only_a_params_file_inside_the_repository(tmp_path):
    from flows.pipeline import params_inside_repository

    repo = tmp_path / "repo"
    repo.mkdir()
    assert params_inside_repository("params.yaml", repo) == "params.yaml"
    for outside in ("../params.yaml", str(tmp_path / "elsewhere.yaml"), "/etc/passwd"):
        with pytest.raises(ConfigError, match="is outside the repository"):
            params_inside_repository(outside, repo)
    (repo / "link.yaml").symlink_to(tmp_path / "elsewhere.yaml")  # resolved, then judged
    with pytest.raises(ConfigError, match="is outside the repository"):
        params_inside_repository("link.yaml", repo)


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


BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
"""


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (BOMB, 2),  # under unknown keys: refused before the unknown-key check would run
        ("model:\n  units: &u [8]\ntraining:\n  epochs: 2\nx: *u\n", 5),
    ],
)
def test_a_yaml_alias_is_refused_before_it_expands(tmp_path, text, line):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"line {line}: a YAML alias \(\*name\) is not allowed"):
        load_config(path)


def test_a_params_file_past_the_size_cap_is_refused_unread(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  path: data/raw/x.csv\n" + "#" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match=r"params.yaml is 1.0 MiB: a params file is a few KB"):
        load_config(path)


def test_a_string_param_past_its_bound_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"orchestration.deployment: String should have at most"):
        parse_config({"orchestration": {"deployment": "x" * 50_000}})

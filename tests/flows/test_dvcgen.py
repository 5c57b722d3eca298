"""dvc.yaml agrees with the stage declarations, and extending the pipeline touches only the new
module and the declaration list (issue: architecture)."""

from __future__ import annotations

import copy
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from flows import dvcgen, registry
from flows.stage import Stage, code_deps, import_closure
from tasks import catalog
from tasks.config import Config, load_config
from tests.conftest import ROOT, base_env, git_commit, run


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def committed() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_committed_dvc_yaml_is_what_the_declarations_generate(cfg, committed, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert dvcgen.disagreements(committed, cfg) == []
    assert dvcgen.stale(ROOT / "dvc.yaml", ROOT / "params.yaml") == ""


@pytest.mark.parametrize(
    ("stage", "section", "item", "expected"),
    [
        (
            "train",
            "deps",
            "tasks/model/network.py",
            "train: reads tasks/model/network.py but dvc.yaml does not",
        ),
        (
            "evaluate",
            "deps",
            "tasks/evaluation/metrics.py",
            "evaluate: reads tasks/evaluation/metrics.py",
        ),
        ("ingest", "deps", "${data.path}", "ingest: reads ${data.path}"),
        ("evaluate", "deps", "models/model.keras", "evaluate: reads models/model.keras"),
        (
            "publish",
            "deps",
            "tasks/publishing/targets/sqlite.py",
            "publish: reads tasks/publishing/targets/sqlite.py",
        ),
        ("evaluate", "metrics", "metrics/gate.json", "evaluate: writes metrics/gate.json"),
        ("prepare", "outs", "models/scaler.npz", "prepare: writes models/scaler.npz"),
        ("train", "params", "model", "train: params in dvc.yaml"),
    ],
)
def test_removing_an_entry_is_a_disagreement(cfg, committed, stage, section, item, expected):
    doc = copy.deepcopy(committed)
    entries = doc["stages"][stage][section]
    kept = [e for e in entries if (next(iter(e)) if isinstance(e, dict) else e) != item]
    assert len(kept) == len(entries) - 1, f"{item} is not in {stage}.{section}"
    doc["stages"][stage][section] = kept
    problems = dvcgen.disagreements(doc, cfg)
    assert any(p.startswith(expected) for p in problems), problems


def test_an_extra_dep_and_an_unknown_stage_are_disagreements(cfg, committed):
    doc = copy.deepcopy(committed)
    doc["stages"]["prepare"]["deps"].append("tasks/model/network.py")
    doc["stages"]["orphan"] = {"cmd": "true"}
    problems = dvcgen.disagreements(doc, cfg)
    assert (
        "prepare: dvc.yaml lists dep tasks/model/network.py, which the stage does not read"
        in problems
    )
    assert any("'orphan'" in p for p in problems)


def test_import_closure_follows_lazy_imports_and_packages():
    files = import_closure("flows.stages.train")
    # tasks.model.train is imported inside run() (TensorFlow only when the stage runs); it imports
    # tasks.model.network, which imports nothing that names train's callers.
    assert {"tasks/model/train.py", "tasks/model/network.py", "flows/multiworker.py"} <= set(files)
    assert "tasks/__init__.py" in files and "flows/stages/__init__.py" in files
    # The path table is not a code dep (every path is in dvc.yaml itself), nor the stage list.
    assert "tasks/catalog.py" not in files and "flows/registry.py" not in files
    # Stages do not depend on each other's modules.
    assert "flows/stages/publish.py" not in files


def test_every_stage_depends_on_the_runner_but_not_on_other_stages(cfg):
    for stage in registry.stages():
        deps = code_deps(stage, cfg)
        assert "flows/stages/__main__.py" in deps
        others = {f"flows/stages/{s.name}.py" for s in registry.stages() if s is not stage}
        assert not others & set(deps), stage.name


def test_declarations_are_checked_against_each_other():
    good = registry.stages()
    reader = Stage(name="early", run=lambda cfg, ctx: {}, reads=("model",), writes=(), params=())
    with pytest.raises(registry.RegistryError, match="early reads 'model', which no earlier"):
        registry.check((reader, *good))
    twice = Stage(name="twice", run=lambda cfg, ctx: {}, reads=(), writes=("model",), params=())
    with pytest.raises(registry.RegistryError, match="'model' is written by both train and twice"):
        registry.check((*good, twice))
    unknown = Stage(name="u", run=lambda cfg, ctx: {}, reads=(), writes=("nowhere",), params=())
    with pytest.raises(registry.RegistryError, match="unknown artifact 'nowhere'"):
        registry.check((*good, unknown))


def test_a_stage_cannot_use_an_artifact_it_does_not_declare():
    stage = registry.by_name("prepare")
    assert stage.path("prepared") == Path("data/prepared/arrays.npz")
    with pytest.raises(catalog.CatalogError, match="does not declare"):
        stage.path("model")


def test_param_bound_paths_need_the_config(cfg):
    with pytest.raises(catalog.CatalogError, match="publish.store says"):
        catalog.path("store")
    assert catalog.path("store", cfg) == Path(cfg.publish.store)


TOY_STAGE = '''
"""toy: counts the raw rows (a stage added by a test)."""

from flows.stage import NO_RUN, Stage
from tasks import catalog, io


def run(cfg, ctx=NO_RUN):
    import polars as pl

    rows = pl.read_csv(STAGE.path("raw", cfg)).height
    io.write_json(STAGE.path("toy_rows"), {"rows": rows})
    return {"rows": rows}


STAGE = Stage(
    name="toy",
    run=run,
    reads=("raw",),
    writes=("toy_rows",),
    params=("data.path",),
    declares=(catalog.Entry("toy_rows", "metrics/toy.json", "metric", "raw row count"),),
)
'''


@pytest.mark.slow
def test_a_new_stage_is_one_module_and_one_line(project: Path):
    """The toy stage's module and one line in the declaration list; dvc.yaml regenerated.
    `dvc repro toy` runs it (its only input is the raw source) and nothing else changes."""
    (project / "flows/stages/toy.py").write_text(textwrap.dedent(TOY_STAGE))
    reg = project / "flows/registry.py"
    reg.write_text(reg.read_text().replace(
        '    "flows.stages.publish",\n', '    "flows.stages.publish",\n    "flows.stages.toy",\n'
    ))  # fmt: skip
    env = base_env()
    run([sys.executable, "-m", "flows.dvcgen"], project, env=env)
    changed = run(["git", "status", "--porcelain"], project).stdout.split("\n")
    assert sorted(line[3:] for line in changed if line) == [
        "dvc.yaml",
        "flows/registry.py",
        "flows/stages/toy.py",
    ]
    toy = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["toy"]
    assert toy["cmd"] == "python -m flows.stages toy"
    assert "flows/stages/toy.py" in toy["deps"] and "${data.path}" in toy["deps"]
    assert toy["metrics"] == [{"metrics/toy.json": {"cache": False}}]
    git_commit(project, "toy stage")

    run(["dvc", "repro", "toy"], project, env=env)
    assert json.loads((project / "metrics/toy.json").read_text()) == {"rows": 144}
    assert not (project / "data/validated").exists()  # no other stage ran
    run([sys.executable, "-m", "flows.dvcgen", "--check"], project, env=env)
    assert run(["dvc", "status", "toy"], project, env=env).stdout.strip().endswith("up to date.")


TOY_TARGET = '''
"""CSV export of the current forecasts (a publish target added by a test)."""

from tasks import catalog
from tasks.publishing.targets import Publication, PublishTarget


class CsvExport(PublishTarget):
    name = "csvexport"
    outputs = (catalog.Entry("csv_export", "published/forecasts.csv", "out", "CSV", persist=True),)

    def publish(self, pub: Publication, cfg) -> dict:
        pub.write(catalog.path("csv_export"), pub.current.write_csv)
        return {"rows": pub.current.height}


TARGET = CsvExport()
'''

PUBLISH_WITH_TOY = """
import json, sys
from datetime import datetime
import polars as pl
from tasks.publishing import targets
from tasks.config import load_config
from tasks.publishing.lineage import LINEAGE_FIELDS

cfg = load_config("params.yaml")
frame = pl.DataFrame({
    "series_id": ["a", "a"], "timestamp": [datetime(2025, 1, 1), datetime(2025, 2, 1)],
    "horizon_step": [1, 2], "forecast": [1.0, 2.0],
})
lineage = {f: "x" for f in LINEAGE_FIELDS} | {"model_md5": "m" * 32, "data_md5": "d" * 32,
    "params_md5": "p" * 32, "published_at": "2025-01-01T00:00:00+00:00"}
print(json.dumps(targets.publish(frame, lineage, cfg, "published/.journal"), default=str))
"""


@pytest.mark.slow
def test_a_new_publish_target_is_one_module(project: Path):
    (project / "tasks/publishing/targets/csvexport.py").write_text(textwrap.dedent(TOY_TARGET))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["publish"]["targets"] = ["sqlite", "parquet", "csvexport"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = base_env()
    out = run([sys.executable, "-c", PUBLISH_WITH_TOY], project, env=env).stdout
    summaries = json.loads(out)
    assert list(summaries) == ["sqlite", "parquet", "csvexport"]
    assert summaries["csvexport"] == {"rows": 2}
    assert (project / "published/forecasts.csv").read_text().count("\n") == 3
    # dvc.yaml follows: the target's module is a publish dep and its file a persist out.
    run([sys.executable, "-m", "flows.dvcgen"], project, env=env)
    publish = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["publish"]
    assert "tasks/publishing/targets/csvexport.py" in publish["deps"]
    assert {"published/forecasts.csv": {"persist": True}} in publish["outs"]
    # A name that is no module is refused by the config, naming the known ones.
    params["publish"]["targets"] = ["sqlite", "nosuch"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    bad = run([sys.executable, "-c", PUBLISH_WITH_TOY], project, env=env, check=False)
    assert bad.returncode != 0
    assert "publish.targets: unknown target(s) nosuch; one of csvexport, parquet, sqlite" in (
        bad.stderr
    )


def test_the_first_target_must_be_the_system_of_record(tmp_path):
    from tasks.config import parse_config
    from tasks.publishing import targets

    cfg = parse_config({"publish": {"targets": ["parquet", "sqlite"]}})
    with pytest.raises(ValueError, match="first target must be the one system of record"):
        targets.publish(None, {}, cfg, tmp_path / "journal")


def test_the_pipeline_refuses_a_stale_dvc_yaml(cfg, committed, tmp_path, monkeypatch):
    from flows.pipeline import StaleDvcYaml, check_dvc_yaml

    monkeypatch.chdir(ROOT)
    check_dvc_yaml(cfg, ROOT / "dvc.yaml")  # the committed one agrees
    doc = copy.deepcopy(committed)
    doc["stages"]["train"]["deps"].remove("tasks/model/network.py")
    stale = tmp_path / "dvc.yaml"
    stale.write_text(yaml.safe_dump(doc))
    with pytest.raises(StaleDvcYaml, match=r"train: reads tasks/model/network.py .*flows.dvcgen"):
        check_dvc_yaml(cfg, stale)

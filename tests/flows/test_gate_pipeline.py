"""The backtest, the champion/challenger gate and the intervals through the real pipeline
(`dvc repro` in a temp git repo, tiny params): the first run, a challenger worse than the champion,
a diverged model and folds that do not fit; plots that render; the published-forecasts command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from tasks.io import md5_file
from tests.conftest import base_env, run, update_params

pytestmark = pytest.mark.slow

STATE = (
    "published/forecasts.sqlite",
    "published/forecasts.parquet",
    "published/champion.keras",
    "published/champion.json",
)


def _json(project: Path, rel: str) -> dict:
    return json.loads((project / rel).read_text())


def _snapshot(project: Path) -> dict[str, bytes]:
    return {rel: (project / rel).read_bytes() for rel in STATE}


def test_first_run_is_judged_on_value_and_leaves_a_champion_and_intervals(project_after_run):
    # A private copy: DVC writes its state under .dvc/tmp even to show plots, and the shared
    # reproduced project may be being copied by another pytest-xdist worker meanwhile.
    project = project_after_run
    gate = _json(project, "metrics/gate.json")
    assert gate["first_run"] is True and gate["champion"] is None and gate["passed"] is True
    assert [c["name"] for c in gate["checks"]] == ["lstm_mase_max", "lstm_rmse_vs_seasonal_naive"]
    model_md5 = md5_file(project / "models/model.keras")
    assert gate["model_md5"] == model_md5
    assert md5_file(project / "published/champion.keras") == model_md5
    meta = _json(project, "published/champion.json")
    assert meta["model_md5"] == model_md5
    assert meta["trained_through"] == {"airpassengers": "1958-12-01T00:00:00"}

    scores = _json(project, "metrics/evaluate.json")
    assert scores["n_folds"] == 3
    assert {"rmse", "mase", "coverage_80", "coverage_95"} <= set(scores["lstm"])
    assert set(scores) >= {"naive", "seasonal_naive", "drift"}
    folds = _json(project, "metrics/folds.json")["folds"]
    assert [folds[f"fold_{k}"]["origin"]["airpassengers"][:7] for k in range(3)] == [
        "1959-01",
        "1958-01",
        "1957-01",
    ]

    export = pl.read_parquet(project / "published/forecasts.parquet")
    assert export.height == 24
    assert (
        export.select("lo_80", "hi_80", "lo_95", "hi_95").null_count().sum_horizontal().item() == 0
    )
    assert (export["lo_95"] <= export["lo_80"]).all() and (
        export["lo_80"] < export["forecast"]
    ).all()
    assert (export["forecast"] < export["hi_80"]).all() and (
        export["hi_80"] <= export["hi_95"]
    ).all()

    # The plots render (top-level definitions, every y column found).
    shown = run(["dvc", "plots", "show", "--json"], project, env=base_env())
    plots = json.loads(shown.stdout)["data"]
    for plot_id, fields in {
        "training curve": {"loss", "val_loss"},
        "backtest forecast": {"actual", "lstm", "lo_80", "hi_80", "lo_95", "hi_95"},
        "backtest error per fold": {"lstm", "naive", "seasonal_naive", "drift"},
        "backtest error per horizon step": {"lstm", "naive", "seasonal_naive", "drift"},
    }.items():
        values = plots[plot_id][0]["content"]["data"]["values"]
        assert fields <= {v["field"] for v in values}, plot_id

    # What is published, and by which run.
    cli = [sys.executable, "-m", "flows.published"]
    shown = run([*cli, "--csv", str(project.parent / "current.csv")], project, env=base_env())
    assert f"model {model_md5[:12]}" in shown.stdout
    assert pl.read_csv(project.parent / "current.csv").height == 24
    runs = run([*cli, "--runs"], project, env=base_env())
    assert model_md5[:12] in runs.stdout


def test_challenger_worse_than_the_champion_is_not_published(project_after_run: Path):
    project = project_after_run
    before = _snapshot(project)
    champion_md5 = md5_file(project / "published/champion.keras")
    # A challenger that cannot learn (no seasonal base, a learning rate that barely moves it):
    # it forecasts about the training mean, far worse than the champion on fold 0.
    update_params(
        project,
        {
            "model": {"seasonal_residual": False},
            "training": {"epochs": 1, "learning_rate": 1e-6},
            "gate": {"max_mase": 1000.0, "max_rel_change": 0.5},
        },
    )
    failed = run(["dvc", "repro"], project, env=base_env(), check=False)
    assert failed.returncode != 0
    assert "NOT PUBLISHED" in failed.stderr
    assert "worse than the champion" in failed.stderr

    gate = _json(project, "metrics/gate.json")
    assert gate["passed"] is False and gate["first_run"] is False
    assert gate["champion"]["status"] == "compared"
    assert gate["champion"]["md5"] == champion_md5
    assert gate["champion"]["challenger"] > 1.5 * gate["champion"]["champion"]
    change = [c for c in gate["checks"] if c["name"] == "mase_rel_change_vs_champion"]
    assert change and change[0]["passed"] is False
    # the champion was rescored on every fold, flagged where it had trained
    assert gate["champion"]["per_fold"]["fold_1"]["seen_in_training"] is True
    assert gate["champion"]["per_fold"]["fold_0"]["seen_in_training"] is False
    # nothing published: store, export and champion byte for byte as they were
    assert _snapshot(project) == before


def test_diverged_model_and_folds_that_do_not_fit_stop_with_exit_2(project_after_run: Path):
    import keras

    from tasks.forecast import load_model

    project = project_after_run
    before = _snapshot(project)
    # A model whose forecasts are NaN (what a diverged fit leaves).
    model = load_model(project / "models/model.keras")
    head = model.get_layer("head")
    head.set_weights([w * float("nan") for w in head.get_weights()])
    keras.saving.save_model(model, project / "models/model.keras")
    gate_before = (project / "metrics/gate.json").read_bytes()

    stage = [sys.executable, "-m", "flows.stages"]
    update_params(project, {"evaluate": {"n_windows": 1}})  # no fold fit: straight to the model
    diverged = run([*stage, "evaluate"], project, env=base_env(), check=False)
    assert diverged.returncode == 2, diverged.stderr
    assert "non-finite forecasts" in diverged.stderr
    assert (project / "metrics/gate.json").read_bytes() == gate_before
    # publish refuses a model the gate did not judge
    refused = run([*stage, "publish"], project, env=base_env(), check=False)
    assert refused.returncode == 2 and "NOT PUBLISHED" in refused.stderr

    update_params(project, {"evaluate": {"n_windows": 20, "step": 12}})
    short = run([*stage, "ingest"], project, env=base_env(), check=False)
    assert short.returncode == 2
    assert "min_history" in short.stderr and "needs at least 324" in short.stderr
    assert _snapshot(project) == before

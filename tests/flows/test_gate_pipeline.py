"""The backtest, the champion/challenger gate and the intervals through the real pipeline
(`dvc repro` in a temp git repo, tiny params): the first run (per-series choice, shipped refit),
the champion compared only where neither model trained, a diverged model and folds that do not
fit; plots that render; the published-forecasts command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from tasks.io import md5_file
from tests.conftest import base_env, published_state, run, update_params

pytestmark = pytest.mark.slow

STATE = (
    "published/forecasts.sqlite",
    "published/forecasts.parquet",
    "published/champion.keras",
    "published/champion.json",
)


def _json(project: Path, rel: str) -> dict:
    return json.loads((project / rel).read_text())


def _snapshot(project: Path) -> dict:
    return published_state(project, STATE)


def test_first_run_is_judged_on_value_and_leaves_a_champion_and_intervals(project_after_run):
    # A private copy: DVC writes its state under .dvc/tmp even to show plots, and the shared
    # reproduced project may be being copied by another pytest-xdist worker meanwhile.
    project = project_after_run
    gate = _json(project, "metrics/gate.json")
    assert gate["first_run"] is True and gate["champion"] is None and gate["passed"] is True
    assert [c["name"] for c in gate["checks"]] == [
        "published_mase_max",
        "published_rmse_vs_seasonal_naive",
        "fallback_fraction_max",
    ]
    # The gate judged the train stage's model (through 1958-12, the backtest's last origin);
    # what ships is the refit through the last observation, 1960-12.
    assert gate["model_md5"] == md5_file(project / "models/model.keras")
    model_md5 = md5_file(project / "models/model_full.keras")
    assert gate["shipped_model"]["md5"] == model_md5 != gate["model_md5"]
    assert gate["shipped_model"]["trained_through_last"] == "1960-12-01T00:00:00"
    train = _json(project, "metrics/train.json")
    train_epochs = train["epochs"]
    assert all(
        0 < e <= t for e, t in zip(gate["shipped_model"]["epochs"], train_epochs, strict=True)
    )
    # The refit's epochs are the size of the train stage's (its fit: the earliest fold), though
    # the full history holds more windows.
    assert gate["shipped_model"]["windows_per_epoch"] == train["windows_per_epoch"]
    assert gate["shipped_model"]["train_windows"] > train["windows_per_epoch"]
    assert md5_file(project / "published/champion.keras") == model_md5
    meta = _json(project, "published/champion.json")
    assert meta["model_md5"] == model_md5
    assert meta["trained_through"] == {"airpassengers": "1960-12-01T00:00:00"}
    published = _json(project, "metrics/publish.json")
    assert published["trained_through"] == {
        "first": "1960-12-01T00:00:00",
        "last": "1960-12-01T00:00:00",
    }

    scores = _json(project, "metrics/evaluate.json")
    assert scores["n_folds"] == 3
    assert {"rmse", "mase", "coverage_80", "coverage_95"} <= set(scores["lstm"])
    assert set(scores) >= {"naive", "seasonal_naive", "drift"}
    # The per-series choice: made on folds 1 and 2, scored on fold 0.
    assert set(scores["published"]) == set(scores["lstm"])
    choice = scores["selection"]
    assert choice["chosen_on_folds"] == [1, 2] and sum(choice["counts"].values()) == 1
    chosen = meta["choices"]["airpassengers"]
    assert choice["counts"][chosen] == 1
    assert scores["published"]["mase"] == scores["latest_fold"][chosen]["mase"]
    folds = _json(project, "metrics/folds.json")["folds"]
    assert [folds[f"fold_{k}"]["origin"]["airpassengers"][:7] for k in range(3)] == [
        "1959-01",
        "1958-01",
        "1957-01",
    ]

    export = pl.read_parquet(project / "published/forecasts.parquet")
    assert export.height == 24 and export["model"].to_list() == [chosen] * 24
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


BASELINES = ["naive", "seasonal_naive", "drift"]


def _serve_champion_with(project: Path, model: str) -> None:
    meta_path = project / "published/champion.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "choices": {"airpassengers": model}}))


# Three evaluate runs (one whole repro) after the shared first run, which a fresh session
# builds within this test's time: more than the default 600 s on 2 busy cores.
@pytest.mark.timeout(1500)
def test_the_champion_is_compared_only_where_neither_model_trained(project_after_run: Path):
    project = project_after_run
    champion_md5 = md5_file(project / "published/champion.keras")
    # A champion that published AirPassengers with its LSTM (what it chose depends on the data
    # and candidates: set here, as champion.json would say it).
    _serve_champion_with(project, "lstm")
    # Same data again: the champion (refit through 1960-12) trained on the latest fold, so
    # nothing can be compared out of sample; the value thresholds alone decide. (The gate judges
    # the champion's folds, whatever the challenger: evaluate alone reruns, no new train.)
    run(["dvc", "repro", "--single-item", "--force", "evaluate"], project, env=base_env())
    gate = _json(project, "metrics/gate.json")
    assert gate["first_run"] is False and gate["champion"]["md5"] == champion_md5
    assert gate["champion"]["status"] == "no_comparable_folds"
    assert any("judged on the value thresholds" in n for n in gate["notes"])
    assert gate["champion"]["per_fold"]["fold_0"]["seen_in_training"] is True

    # A champion that served it with a statistical candidate (evaluate.candidates): rescored as
    # that candidate fitted on the history before fold 0's origin, so compared there, with
    # exactly that candidate's fold-0 score.
    # (Theta must be among this run's candidates: the bundled params.yaml lists the baselines.)
    _serve_champion_with(project, "theta")
    update_params(project, {"evaluate": {"candidates": [*BASELINES, "theta"]}})
    run(["dvc", "repro", "--single-item", "--force", "evaluate"], project, env=base_env())
    c = _json(project, "metrics/gate.json")["champion"]
    assert c["status"] == "compared" and c["per_fold"]["fold_0"]["seen_in_training"] is True
    theta = _json(project, "metrics/evaluate.json")["latest_fold"]["theta"]["mase"]
    assert c["champion"] == pytest.approx(theta)

    # Two more years of data: fold 0 now lies after everything the champion saw. Back to the
    # bundled candidates, and a champion that served with its LSTM.
    update_params(project, {"evaluate": {"candidates": BASELINES}})
    _serve_champion_with(project, "lstm")
    raw = project / "data/raw/airpassengers.csv"
    frame = pl.read_csv(raw, try_parse_dates=True)
    more = frame.tail(24).with_columns(
        pl.col("timestamp").dt.offset_by("2y"), (pl.col("value") * 1.1).round(0).cast(pl.Int64)
    )
    pl.concat([frame, more]).write_csv(raw, date_format="%Y-%m-%d")
    champion_md5 = md5_file(project / "published/champion.keras")
    published = _snapshot(project)
    update_params(project, {"gate": {"max_rel_change": 0.0}})
    done = run(["dvc", "repro"], project, env=base_env(), check=False)
    gate = _json(project, "metrics/gate.json")
    c = gate["champion"]
    assert c["status"] == "compared" and c["md5"] == champion_md5
    assert c["compared_on"] == {"fold": 0, "series": 1, "series_ids": ["airpassengers"]}
    assert c["per_fold"]["fold_0"]["seen_in_training"] is False
    # zero tolerance: published exactly when the challenger is no worse than the champion
    assert gate["passed"] == (c["challenger"] <= c["champion"])
    assert (done.returncode == 0) == gate["passed"]
    if not gate["passed"]:
        assert "worse than the champion" in done.stderr
        assert _snapshot(project) == published  # nothing of the last publish lost


def test_diverged_model_and_folds_that_do_not_fit_stop_with_exit_2(project_after_run: Path):
    import keras

    from tasks.model.forecast import load_model

    project = project_after_run
    before = _snapshot(project)
    # A model whose forecasts are NaN (what a diverged fit leaves).
    model = load_model(project / "models/model.keras")
    head = model.get_layer("head")
    head.set_weights([w * float("nan") for w in head.get_weights()])
    keras.saving.save_model(model, project / "models/model.keras")
    gate_before = (project / "metrics/gate.json").read_bytes()

    stage = [sys.executable, "-m", "flows.stages"]
    update_params(project, {"evaluate": {"n_windows": 1}})
    one = run([*stage, "evaluate"], project, env=base_env(), check=False)
    assert one.returncode == 2 and "evaluate.n_windows >= 2" in one.stderr
    update_params(project, {"evaluate": {"n_windows": 2}})  # one fold fit, then the model
    diverged = run([*stage, "evaluate"], project, env=base_env(), check=False)
    assert diverged.returncode == 2, diverged.stderr
    assert "non-finite forecasts" in diverged.stderr
    assert (project / "metrics/gate.json").read_bytes() == gate_before
    # publish refuses a model the gate did not judge
    refused = run([*stage, "publish"], project, env=base_env(), check=False)
    assert refused.returncode == 2 and "NOT PUBLISHED" in refused.stderr

    # Folds no series can hold for the LSTM: the series is not bad data (ingest keeps it, it
    # would be forecast by another candidate), but with no series left for the LSTM to train
    # on, prepare stops, naming the steps and the keys.
    update_params(project, {"evaluate": {"n_windows": 20, "step": 12}})
    run([*stage, "ingest"], project, env=base_env())
    short = run([*stage, "prepare"], project, env=base_env(), check=False)
    assert short.returncode == 2, short.stderr
    # 300 = the auto lookback at its floor (a season, 12) + 2 * 24 + 12 + 19 * 12
    assert "no series has the 300 steps the LSTM needs" in short.stderr
    assert "evaluate.n_windows" in short.stderr
    assert _snapshot(project) == before

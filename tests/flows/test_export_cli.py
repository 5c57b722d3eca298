"""`python -m flows.export` on a project whose pipeline ran: it writes a TFLite model of the shipped
model (models/model_full.keras, what publish forecasts with and keeps as the champion, not the
train stage's models/model.keras) that forecasts like it; without that model it exits 2 with a
message and writes nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from flows.export import FLOAT_TOLERANCE
from tasks.io import md5_file
from tests.conftest import base_env, run

pytestmark = pytest.mark.slow

EXPORT = [sys.executable, "-m", "flows.export"]


def test_export_cli_writes_a_checked_tflite_and_refuses_without_a_model(
    project_after_run: Path, tmp_path: Path
):
    project = project_after_run
    model = project / "models/model_full.keras"
    out = project / "models/model_full.tflite"
    # The model publish shipped is the one exported by default.
    assert md5_file(project / "published/champion.keras") == md5_file(model)

    # Before evaluate refit it (here: the model moved away), nothing to export.
    away = model.rename(tmp_path / "model_full.keras")
    refused = run(EXPORT, project, env=base_env(), check=False)
    assert refused.returncode == 2, refused.stderr
    assert "nothing exported: no model models/model_full.keras" in refused.stderr
    assert "dvc repro evaluate" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not list((project / "models").glob("*.tflite"))
    away.rename(model)

    done = run(EXPORT, project, env=base_env())
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert out.is_file() and report["bytes"] == out.stat().st_size > 0
    assert report["path"] == "models/model_full.tflite" and report["quantized"] is False
    assert report["series"] == 1  # the bundled data: AirPassengers only
    assert report["tolerance"] == FLOAT_TOLERANCE
    assert report["max_abs_diff_scaled"] <= FLOAT_TOLERANCE

    # The file on disk, read back independently of the CLI's own check, is a working model.
    from tasks.features.prepare import Prepared
    from tasks.model.export import predict_tflite
    from tasks.model.forecast import load_model, model_inputs

    keras_model = load_model(model)
    prepared = Prepared.load(project / "data/prepared/arrays.npz", project / "models/scaler.npz")
    x = model_inputs(prepared, prepared.forecast_starts, keras_model)
    lite = predict_tflite(out, x)
    assert lite.shape == (1, 24)
    np.testing.assert_allclose(
        lite, np.asarray(keras_model.predict(x, verbose=0)), atol=FLOAT_TOLERANCE
    )
    # ... and not the train stage's model, whose weights never saw the last `horizon` steps. The
    # refit starts from the same seeds and takes the judged fit's steps (tasks/model/refit.py),
    # so the two are near (5e-3 apart in scaled units here), yet far beyond the tolerance that
    # ties the export to its model.
    stage_model = load_model(project / "models/model.keras")
    stage_out = np.asarray(stage_model.predict(x, verbose=0))
    assert np.abs(lite - stage_out).max() > 10 * FLOAT_TOLERANCE

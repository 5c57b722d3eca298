"""`--params FILE` for the pipeline (issue 25.12): DVC decides what is up to date against
params.yaml (dvc.yaml's params), so a pipeline run with another file is refused before any
work; the deployment likewise."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import deploy
from flows.pipeline import params_tracked_by_dvc
from tasks.errors import ConfigError
from tests.flows.test_cli import forecast


def test_only_the_params_file_dvc_tracks_is_accepted(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("{}\n")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "params.yaml")
    for same in ("params.yaml", "./params.yaml", str(tmp_path / "params.yaml"), "link.yaml"):
        assert params_tracked_by_dvc(same, tmp_path) == same
    for other in ("other.yaml", "examples/covariates/params.yaml"):
        with pytest.raises(ConfigError, match="the file DVC tracks"):
            params_tracked_by_dvc(other, tmp_path)


def test_the_pipeline_refuses_another_params_file_before_any_work(project: Path):
    """With other.yaml DVC would compare params.yaml's values with dvc.lock: a key changed only
    in other.yaml would rerun nothing. Exit 2 naming the way that works; nothing ran."""
    other = project / "other.yaml"
    other.write_text((project / "params.yaml").read_text() + "\n")
    result = forecast(["pipeline", "--params", "other.yaml"], project)
    assert result.returncode == 2, result.stderr
    assert "runs only with params.yaml, the file DVC tracks" in result.stderr
    assert "dvc exp run --set-param" in result.stderr
    assert not (project / "data" / "validated").exists()  # no stage ran
    assert not (project / "models").exists()


def test_the_deployment_refuses_another_params_file(project: Path, monkeypatch, capsys):
    monkeypatch.chdir(project)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never reached
    (project / "other.yaml").write_text((project / "params.yaml").read_text())
    assert deploy.main(["--params", "other.yaml"]) == 2
    assert "the file DVC tracks" in capsys.readouterr().err

"""Lineage: git commit (with -dirty), md5s equal to hashlib's, flow run id, UTC timestamp."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from tasks.lineage import collect_lineage

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _inputs(root: Path) -> tuple[Path, Path, Path]:
    data, params, model = root / "data.parquet", root / "params.yaml", root / "model.keras"
    data.write_bytes(b"data bytes")
    params.write_text("gate:\n  max_mase: 1.0\n")
    model.write_bytes(bytes(range(256)) * 10)
    return data, params, model


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    _inputs(tmp_path)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _collect(root: Path, flow_run_id: str | None = None) -> dict:
    return collect_lineage(
        data=root / "data.parquet",
        params=root / "params.yaml",
        model=root / "model.keras",
        flow_run_id=flow_run_id,
    )


def test_lineage_in_a_clean_repo(repo):
    lineage = _collect(repo)
    assert lineage["git_commit"] == _git(repo, "rev-parse", "HEAD")
    model_md5 = hashlib.md5((repo / "model.keras").read_bytes()).hexdigest()
    assert lineage["model_md5"] == model_md5
    assert lineage["model_version"] == model_md5[:12]
    assert lineage["data_md5"] == hashlib.md5(b"data bytes").hexdigest()
    assert lineage["params_md5"] == hashlib.md5((repo / "params.yaml").read_bytes()).hexdigest()
    assert lineage["flow_run_id"] == "none"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", lineage["published_at"])


def test_flow_run_id_is_kept(repo):
    assert _collect(repo, "0b5c7e1e-run")["flow_run_id"] == "0b5c7e1e-run"


def test_changed_tracked_file_marks_dirty(repo):
    (repo / "params.yaml").write_text("gate:\n  max_mase: 2.0\n")
    assert _collect(repo)["git_commit"] == _git(repo, "rev-parse", "HEAD") + "-dirty"


def test_changes_to_dvc_lock_or_untracked_files_are_not_dirty(repo):
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (repo / "untracked.txt").write_text("scratch")
    assert _collect(repo)["git_commit"] == _git(repo, "rev-parse", "HEAD")


def test_outside_git_the_commit_is_unknown(tmp_path, monkeypatch):
    # Stop git from finding a repository in any parent of tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _collect(tmp_path)["git_commit"] == "unknown"


def test_without_git_installed_the_commit_is_unknown(repo, monkeypatch):
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    assert _collect(repo)["git_commit"] == "unknown"

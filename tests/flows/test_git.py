"""The one git runner: its errors, and the commit (with -dirty) a forecast's lineage names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flows.git import GitError, git, head_commit
from tasks.errors import PipelineError

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "params.yaml").write_text("gate:\n  max_mase: 1.0\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_git_returns_output_and_raises_a_pipeline_error_naming_the_command(repo):
    assert git(["rev-parse", "HEAD"], repo).stdout.strip() == _git(repo, "rev-parse", "HEAD")
    with pytest.raises(GitError, match="git show nope:dvc.lock failed: ") as info:
        git(["show", "nope:dvc.lock"], repo)
    assert isinstance(info.value, PipelineError)
    assert git(["show", "nope:dvc.lock"], repo, check=False).returncode != 0


def test_head_commit_in_a_clean_repo(repo):
    assert head_commit(repo) == _git(repo, "rev-parse", "HEAD")
    assert head_commit() == _git(repo, "rev-parse", "HEAD")  # the current directory


def test_changed_tracked_file_marks_dirty(repo):
    (repo / "params.yaml").write_text("gate:\n  max_mase: 2.0\n")
    assert head_commit(repo) == _git(repo, "rev-parse", "HEAD") + "-dirty"


def test_changes_to_dvc_lock_or_untracked_files_are_not_dirty(repo):
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (repo / "untracked.txt").write_text("scratch")
    assert head_commit(repo) == _git(repo, "rev-parse", "HEAD")


def test_outside_git_the_commit_is_unknown(tmp_path, monkeypatch):
    # Stop git from finding a repository in any parent of tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert head_commit(tmp_path) == "unknown"


def test_without_git_installed_the_commit_is_unknown(repo, monkeypatch):
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    assert head_commit(repo) == "unknown"

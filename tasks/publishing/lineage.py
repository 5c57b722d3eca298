"""Where a published forecast came from: code commit, input hashes, model version, flow run.

Pure: the commit is looked up by the caller (flows.git.head_commit) and passed in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from tasks.io import md5_file

LINEAGE_FIELDS = (
    "model_version",
    "git_commit",
    "data_md5",
    "params_md5",
    "model_md5",
    "flow_run_id",
    "published_at",
    # The last timestamp the shipped model trained on (tasks/model/refit.py: each series' last
    # observation; the latest over series when they end at different times, per series in
    # published/champion.json). "unknown" on rows stored before it was recorded.
    "trained_through",
    # Which covariates the model read, by kind (data.covariates), as JSON text:
    # {"future": [...], "past": [...], "static": [...]}. "unknown" on rows stored before.
    "covariates",
)

NO_COVARIATES: dict[str, list[str]] = {"future": [], "past": [], "static": []}


def data_md5(path: str | Path) -> str:
    """md5 of the raw source: a file's bytes (DVC's md5 of it), or of a directory's file list
    with each file's md5; "missing" when it is not there (yet)."""
    path = Path(path)
    if path.is_file():
        return md5_file(path)
    if path.is_dir():
        h = hashlib.md5()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path)}:{md5_file(f)}\n".encode())
        return h.hexdigest()
    return "missing"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def collect_lineage(
    data: Path,
    params: Path,
    model: Path,
    flow_run_id: str | None,
    *,
    commit: str,
    trained_through: str,
    covariates: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Lineage of one publish. The md5s equal the ones DVC records in dvc.lock for these files;
    `commit`: the code's git commit (flows.git.head_commit); `trained_through`: the last
    timestamp the model trained on (ISO 8601)."""
    model_md5 = md5_file(model)
    return {
        "model_version": model_md5[:12],
        "git_commit": commit,
        "data_md5": md5_file(data),
        "params_md5": md5_file(params),
        "model_md5": model_md5,
        "flow_run_id": str(flow_run_id) if flow_run_id is not None else "none",
        "published_at": utc_now(),
        "trained_through": trained_through,
        "covariates": covariates_text(covariates),
    }


def covariates_text(covariates: Mapping[str, Sequence[str]] | None) -> str:
    """The lineage value of the covariates a model read (compact, key-sorted JSON)."""
    used = {kind: list(names) for kind, names in (covariates or NO_COVARIATES).items()}
    return json.dumps(used, sort_keys=True, separators=(",", ":"))

"""Lineage: md5s equal to hashlib's, the commit as given, flow run id, UTC timestamp; the raw
source's md5 (run names, versioned runs). The commit lookup: tests/flows/test_git.py."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tasks.publishing.lineage import collect_lineage, covariates_text, data_md5


def _inputs(root: Path) -> tuple[Path, Path, Path]:
    data, params, model = root / "data.parquet", root / "params.yaml", root / "model.keras"
    data.write_bytes(b"data bytes")
    params.write_text("gate:\n  max_mase: 1.0\n")
    model.write_bytes(bytes(range(256)) * 10)
    return data, params, model


def _collect(root: Path, flow_run_id: str | None = None, commit: str = "c0ffee") -> dict:
    return collect_lineage(
        data=root / "data.parquet",
        params=root / "params.yaml",
        model=root / "model.keras",
        flow_run_id=flow_run_id,
        commit=commit,
        trained_through="1960-12-01T00:00:00",
    )


def test_lineage_hashes_the_inputs_and_keeps_the_commit(tmp_path):
    _inputs(tmp_path)
    lineage = _collect(tmp_path, commit="0123abc-dirty")
    assert lineage["git_commit"] == "0123abc-dirty"
    assert lineage["trained_through"] == "1960-12-01T00:00:00"
    model_md5 = hashlib.md5((tmp_path / "model.keras").read_bytes()).hexdigest()
    assert lineage["model_md5"] == model_md5
    assert lineage["model_version"] == model_md5[:12]
    assert lineage["data_md5"] == hashlib.md5(b"data bytes").hexdigest()
    params = (tmp_path / "params.yaml").read_bytes()
    assert lineage["params_md5"] == hashlib.md5(params).hexdigest()
    assert lineage["flow_run_id"] == "none"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", lineage["published_at"])


def test_flow_run_id_is_kept(tmp_path):
    _inputs(tmp_path)
    assert _collect(tmp_path, "0b5c7e1e-run")["flow_run_id"] == "0b5c7e1e-run"


def test_data_md5_of_a_file_a_directory_and_nothing(tmp_path):
    data, _, _ = _inputs(tmp_path)
    assert data_md5(data) == hashlib.md5(b"data bytes").hexdigest()
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_bytes(b"a")
    (d / "sub" / "b.csv").write_bytes(b"b")
    before = data_md5(d)
    assert len(before) == 32
    (d / "sub" / "b.csv").write_bytes(b"changed")
    assert data_md5(d) != before
    assert data_md5(tmp_path / "absent.csv") == "missing"


def test_the_covariates_a_model_read_are_recorded_by_kind(tmp_path):
    _inputs(tmp_path)
    assert json.loads(_collect(tmp_path)["covariates"]) == {"future": [], "past": [], "static": []}
    used = {"past": ["temp"], "future": ["promo", "holiday"], "static": ["store_type"]}
    text = collect_lineage(
        data=tmp_path / "data.parquet",
        params=tmp_path / "params.yaml",
        model=tmp_path / "model.keras",
        flow_run_id=None,
        commit="c0ffee",
        trained_through="1960-12-01T00:00:00",
        covariates=used,
    )["covariates"]
    assert json.loads(text) == used
    assert text == covariates_text(dict(reversed(used.items())))  # one text per content

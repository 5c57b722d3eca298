"""Bad input fails in seconds (issue 24.2): a source whose header does not fit params.yaml
stops `forecast pipeline` (and `python -m flows.pipeline`) before a Prefect server or
TensorFlow starts, with one block (what, where, the fix), no traceback, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import base_env, run, update_params
from tests.flows.test_cli import forecast

SOURCE = "data/raw/stores.csv"
STARTS_PREFECT = "starting a local Prefect server"  # flows/ephemeral.py says it when it does


@pytest.mark.parametrize(
    "header, columns, what",
    [
        # The newcomer's file, default names: every long-format column is missing.
        ("date,store,sales", None, "missing required column(s) series_id, timestamp, value"),
        # data.columns set, the value column misnamed.
        (
            "date,store,revenue",
            {"series_id": "store", "timestamp": "date", "value": "sales"},
            "missing required column(s) sales (data.columns.value)",
        ),
        # Mapped right, but a column nobody declared.
        (
            "date,store,sales,promo",
            {"series_id": "store", "timestamp": "date", "value": "sales"},
            "promo",
        ),
    ],
)
def test_a_source_that_does_not_fit_stops_before_prefect_starts(project, header, columns, what):
    (project / SOURCE).write_text(f"{header}\n")
    update_params(project, {"data": {"path": SOURCE, **({"columns": columns} if columns else {})}})
    result = forecast(["pipeline"], project)
    assert result.returncode == 2, result.stderr[-3000:]
    err = result.stderr
    assert "Traceback" not in err and STARTS_PREFECT not in err
    assert what in err and SOURCE in err
    assert err.startswith("forecast: bad input, nothing was run (exit 2)\n  what:  ")
    assert "\n  where: " in err and "\n  fix:   " in err
    fix = "set data.columns in params.yaml" if "missing" in what else "data.covariates.past"
    assert f"\n  fix:   {fix}" in err or fix in err.split("\n  fix:   ")[1]
    assert not (project / "data/validated/series.parquet").exists()  # ingest never ran


def test_python_m_flows_pipeline_checks_the_header_too(project: Path):
    (project / SOURCE).write_text("date,store,sales\n2021-06-30,north,10\n")
    update_params(project, {"data": {"path": SOURCE}})
    result = run([sys.executable, "-m", "flows.pipeline"], project, env=base_env(), check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and STARTS_PREFECT not in result.stderr
    assert "pipeline failed: " in result.stderr and "data.columns" in result.stderr

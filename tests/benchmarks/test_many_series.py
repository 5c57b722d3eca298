"""benchmarks/many_series.py's protocol guard: an independent check is never a tuning run."""

from __future__ import annotations

import pytest

from benchmarks.datasets import DATASETS
from benchmarks.many_series import main


def test_tourism_refuses_the_tuning_split_before_any_work(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--dataset", "tourism", "--split", "tuning", "--freq", "monthly"])
    assert stop.value.code == 2
    assert "independent check" in capsys.readouterr().err


def test_tourism_has_the_competitions_horizons():
    horizons = {name: spec["horizon"] for name, spec in DATASETS["tourism"].items()}
    assert horizons == {"monthly": 24, "quarterly": 8, "yearly": 4}

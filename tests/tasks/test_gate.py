"""The evaluation gate: pass, each failing rule, non-finite metrics, and a complete record."""

from __future__ import annotations

import json
import math

import pytest

from tasks.config import GateConfig
from tasks.gate import decide

GATE = GateConfig(max_mase=1.0, min_improvement_over_seasonal_naive=0.1)


def _scores(lstm_rmse: float = 8.0, lstm_mase: float = 0.8) -> dict:
    return {
        "lstm": {"rmse": lstm_rmse, "mae": 6.0, "smape": 5.0, "mase": lstm_mase},
        "naive": {"rmse": 20.0, "mae": 15.0, "smape": 12.0, "mase": 2.0},
        "seasonal_naive": {"rmse": 10.0, "mae": 7.5, "smape": 6.0, "mase": 1.0},
    }


def test_passes_when_both_rules_hold():
    d = decide(_scores(), GATE)
    assert d["passed"] is True
    assert d["reasons"] == []
    assert all(c["passed"] for c in d["checks"])
    assert d["improvement_over_seasonal_naive"] == pytest.approx(0.2)


def test_fails_on_mase():
    d = decide(_scores(lstm_mase=1.23), GATE)
    assert d["passed"] is False
    assert d["reasons"] == ["lstm MASE 1.23 > gate.max_mase 1"]
    assert [c["passed"] for c in d["checks"]] == [False, True]


def test_fails_on_margin_over_seasonal_naive():
    # threshold = 10 * (1 - 0.1) = 9
    d = decide(_scores(lstm_rmse=9.5), GATE)
    assert d["passed"] is False
    assert len(d["reasons"]) == 1
    assert "9.5" in d["reasons"][0] and "= 9" in d["reasons"][0]
    rmse_check = d["checks"][1]
    assert rmse_check == {
        "name": "lstm_rmse_vs_seasonal_naive",
        "value": 9.5,
        "threshold": pytest.approx(9.0),
        "passed": False,
    }
    assert d["improvement_over_seasonal_naive"] == pytest.approx(0.05)


def test_rmse_exactly_at_threshold_passes():
    d = decide(_scores(lstm_rmse=9.0), GateConfig(min_improvement_over_seasonal_naive=0.1))
    assert d["checks"][1]["threshold"] == pytest.approx(9.0)


def test_both_rules_failing_give_two_reasons():
    d = decide(_scores(lstm_rmse=12.0, lstm_mase=1.5), GATE)
    assert d["passed"] is False
    assert len(d["reasons"]) == 2


@pytest.mark.parametrize("metric", ["rmse", "mae", "smape", "mase"])
def test_non_finite_lstm_metric_fails(metric):
    scores = _scores()
    scores["lstm"][metric] = math.nan
    d = decide(scores, GATE)
    assert d["passed"] is False
    assert any(f"lstm {metric} is not finite" in r for r in d["reasons"])


def test_infinite_mase_fails():
    d = decide(_scores(lstm_mase=math.inf), GATE)
    assert d["passed"] is False


def test_every_number_behind_the_decision_is_recorded():
    d = decide(_scores(), GATE)
    json.dumps(d, allow_nan=False)  # JSON-able as it stands
    assert d["lstm"] == _scores()["lstm"]
    assert d["seasonal_naive"] == _scores()["seasonal_naive"]
    assert d["gate"] == {"max_mase": 1.0, "min_improvement_over_seasonal_naive": 0.1}
    assert d["checks"] == [
        {"name": "lstm_mase_max", "value": 0.8, "threshold": 1.0, "passed": True},
        {
            "name": "lstm_rmse_vs_seasonal_naive",
            "value": 8.0,
            "threshold": pytest.approx(9.0),
            "passed": True,
        },
    ]


def test_missing_model_scores_are_an_error():
    scores = _scores()
    del scores["seasonal_naive"]
    with pytest.raises(ValueError, match="seasonal_naive"):
        decide(scores, GATE)

"""The run report's HTML (flows/report.py: render_html is pure): every gate check, the decision,
the scores, and data from files or series ids escaped."""

from __future__ import annotations

from flows.report import Chart, ReportData, render_html

GATE = {
    "passed": False,
    "reasons": ["LSTM MASE 1.7 above <max_mase> 1.0"],
    "checks": [
        {"name": "lstm_mase_max", "value": 1.7, "threshold": 1.0, "passed": False},
        {"name": "lstm_rmse_vs_seasonal_naive", "value": 20.0, "threshold": 57.1, "passed": True},
    ],
    "champion": {"status": "compared", "md5": "abc" * 10, "metric": "mase", "champion": 0.5,
                 "challenger": 1.7},
    "notes": [],
}  # fmt: skip
SCORES = {"lstm": {"rmse": 20.0, "mae": 15.0, "smape": 4.0, "mase": 1.7, "coverage_80": 0.8},
          "seasonal_naive": {"rmse": 57.1, "mae": 50.0, "smape": 13.0, "mase": 1.75}}  # fmt: skip


def test_a_refused_run_shows_the_decision_every_check_and_the_scores():
    page = render_html(ReportData("Forecast run report", "now", SCORES, GATE, "run x"))
    assert "Decision: NOT PUBLISHED: LSTM MASE 1.7 above &lt;max_mase&gt; 1.0" in page
    for check in ("lstm_mase_max", "lstm_rmse_vs_seasonal_naive"):
        assert f"<td>{check}</td>" in page
    assert "<td>1.7</td><td>1</td><td><strong>no</strong></td>" in page
    assert "champion 0.5, this model 1.7" in page
    assert "<td>seasonal_naive</td><td>57.1</td>" in page
    assert "80 % interval 0.8" in page
    assert "Series that fell back or were quarantined" in page and "None reported." in page


def test_series_ids_and_file_values_are_escaped():
    sid = "<img src=x onerror=alert(1)>"
    page = render_html(
        ReportData(
            "Forecast run report",
            "now",
            SCORES,
            {**GATE, "reasons": [f"series {sid} failed"]},
            f"published run with {sid}",
            charts=[Chart("Forecast", "<svg></svg>", f"History and forecast: {sid}")],
            series_status=[{"series_id": sid, "status": "quarantined", "reason": sid}],
        )
    )
    assert "<img" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") == 5


def test_nothing_evaluated_yet_says_so():
    page = render_html(ReportData("Forecast run report", "now"))
    assert "No gate decision yet" in page and "No backtest scores yet" in page
    assert "nothing published yet" in page and "No charts" in page

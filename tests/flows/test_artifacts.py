"""UI artifacts and the failure record: bounded and escaped, whatever the data holds."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

from flows import artifacts, pipeline


def test_series_ids_are_escaped_and_clipped_in_the_chart():
    sid = "<script>alert(1)</script>`$x$" + "x" * 500
    png = b"\x89PNG fake bytes"
    text = artifacts.chart_markdown(png, [sid], "Forecast <b>title</b>")
    # Markdown shows HTML inside a code span as text: the id appears only there.
    assert text.count("<script>") == 1 and "`<script>" in text
    assert "&lt;b&gt;title&lt;/b&gt;" in text
    assert "x" * 100 not in text  # the id is clipped
    assert text.count("`") == 2  # the id's backtick cannot end the code span early
    assert base64.b64encode(png).decode() in text


def test_the_failure_record_is_written_even_when_the_event_cannot_be(tmp_path, monkeypatch):
    """A huge state message: the run-log line holds a clipped reason, and an event that fails
    (e.g. past Prefect's size limit) does not stop the record."""
    import prefect.events

    def refuse(**kwargs):
        raise ValueError("event too large")

    monkeypatch.setattr(prefect.events, "emit_event", refuse)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("orchestration:\n  run_log: logs/runs.jsonl\n")
    run = SimpleNamespace(id="r1", name="data-x", parameters={"params": "params.yaml"})
    state = SimpleNamespace(is_completed=lambda: False, message="m" * 5_000_000, name="Failed")
    pipeline.record_outcome(flow=None, flow_run=run, state=state)
    record = json.loads((tmp_path / "logs/runs.jsonl").read_text())
    assert record["failed"] is True and record["state"] == "Failed"
    assert record["reason"].startswith("m" * 4000) and record["reason"].endswith("chars)")
    assert len(record["reason"]) < 4100


def test_an_artifact_that_fails_is_a_warning_not_a_failed_run(caplog):
    """Artifacts come after the stage wrote its outputs (publish: committed); one that fails
    (a chart it cannot draw, issue 25.7) is logged and the run goes on."""
    import logging

    def fail(cfg, header):
        raise ValueError("year 10000 is out of range")

    stage = SimpleNamespace(name="publish", ui_artifacts=fail)
    with caplog.at_level(logging.WARNING, logger="forecast.test"):
        pipeline._ui_artifacts(stage, None, "header", logging.getLogger("forecast.test"))
    assert "publish: its Prefect artifacts could not be made (ValueError: year 10000" in caplog.text

"""The stage entry point's own behaviour (flows/stages/__main__.py)."""

from __future__ import annotations

from flows.stages.__main__ import done_message
from tasks.textfmt import MESSAGE_CHARS


def test_a_finished_stage_logs_a_bounded_line_naming_what_was_cut():
    small = {"evaluate": {"lstm": {"mase": 0.73}}}
    assert done_message("evaluate", small) == f"evaluate done: {small}"
    stamps = {f"series_{i:05d}": "2026-11-01T00:00:00" for i in range(10_000)}
    champion = {"trained_through": stamps}
    line = done_message("evaluate", {"gate": {"champion": champion}})
    assert len(line) <= MESSAGE_CHARS
    assert line.startswith("evaluate done: {'gate': {'champion': {'trained_through'")
    assert line.endswith(" chars)")  # clip says how much it left out

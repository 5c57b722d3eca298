"""The one coupling between monitoring and publishing: publish reads the monitor's drift
decision (metrics/monitor.json, a declared input of publish) and refuses to publish while it
says drift blocks publishing (monitor.drift_gate: fail and a series drifted)."""

from __future__ import annotations

from collections.abc import Mapping

from tasks.errors import GateFailed


def check_drift(monitor: Mapping) -> None:
    decision = monitor.get("drift") or {}
    if decision.get("blocks_publish"):
        drifted = decision.get("drifted_series") or []
        shown = ", ".join(map(str, drifted[:10])) + (" ..." if len(drifted) > 10 else "")
        raise GateFailed(
            f"NOT PUBLISHED: input drift in {len(drifted)} series ({shown}) and "
            "monitor.drift_gate is fail; the last published forecasts and the champion are "
            "unchanged (see metrics/monitor.json; set monitor.drift_gate: warn to publish anyway)"
        )

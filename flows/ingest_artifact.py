"""The Prefect UI artifact of the ingest stage: `forecast-quarantine`, a table of the series
ingest set aside (data.on_bad_series: skip) and why, from metrics/ingest.json.

Its own module rather than flows/artifacts.py: the ingest stage's code deps are its import
closure (flows/dvcgen.py), and flows/artifacts.py imports the store and the metrics, so a change
there would rerun ingest and everything after it.
"""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_table_artifact

from tasks import io

QUARANTINE_KEY = "forecast-quarantine"


def quarantine_rows(metrics_ingest: dict) -> list[dict]:
    """One row per listed series: its id, source rows, reasons and first failing row (the
    listing in metrics/ingest.json is already bounded and its values clipped)."""
    q = metrics_ingest.get("quarantined") or {"listed": []}
    return [
        {
            "series_id": s["series_id"],
            "rows": s["rows"],
            "reasons": "; ".join(
                f"{r['check']} ({r['failing']}): {r['what']}" for r in s["reasons"]
            ),
            "first failure": _first_failure(s["sample"]),
        }
        for s in q["listed"]
    ]


def quarantine_artifact(metrics_ingest: Path, header: str) -> int | None:
    """Create the table artifact (also when nothing was quarantined, so the key's history shows
    every run); returns the rows listed, None when ingest has not written its metrics."""
    if not metrics_ingest.exists():
        return None
    metrics = io.read_json(metrics_ingest)
    rows = quarantine_rows(metrics)
    q = metrics.get("quarantined") or {"series": 0, "truncated": False}
    shown = f"first {len(rows)} shown" if q.get("truncated") else "all shown"
    create_table_artifact(
        table=rows or [{"series_id": "(none)", "rows": 0, "reasons": "", "first failure": ""}],
        key=QUARANTINE_KEY,
        description=f"series quarantined by ingest: {q['series']} ({shown}); {header}",
    )
    return len(rows)


def _first_failure(sample: list[dict]) -> str:
    if not sample:
        return ""
    r = sample[0]
    where = f"{r['source']} row {r['row']}: " if r.get("row") is not None else ""
    return f"{where}{r.get('timestamp') or ''} {r.get('detail') or ''}".strip()

"""The current forecasts as one Parquet file (for readers without SQLite: dashboards, Spark)."""

from __future__ import annotations

from tasks import catalog
from tasks.publishing import store
from tasks.publishing.targets import Publication, PublishTarget


class ParquetExport(PublishTarget):
    name = "parquet"
    outputs = (catalog.entry("export"),)

    def publish(self, pub: Publication, cfg) -> dict:
        path = catalog.path("export", cfg)
        store.stage_export(pub.txn, pub.current, path)
        return {"export": str(path), "rows": pub.current.height}


TARGET = ParquetExport()

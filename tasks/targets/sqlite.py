"""The embedded SQLite forecast store (tasks/store.py): every run with its lineage, and the
current view. The system of record by default."""

from __future__ import annotations

from tasks import catalog, store
from tasks.targets import Publication, PublishTarget


class SqliteStore(PublishTarget):
    name = "sqlite"
    outputs = (catalog.entry("store"),)
    record = True

    def publish(self, pub: Publication, cfg) -> dict:
        path = catalog.path("store", cfg)
        summary, pub.current = store.stage_store(
            pub.txn, pub.forecasts, pub.lineage, path, pub.keep
        )
        return summary


TARGET = SqliteStore()

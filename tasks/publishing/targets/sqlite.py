"""The forecast store (tasks/publishing/store.py): every run with its lineage, and the current view.
The system of record by default. Its database is the SQLite file `publish.store` (a DVC out), or
the server `publish.url` names (tasks/publishing/db.py); then the DVC out is a manifest of what the
publish wrote, since DVC cannot hash a database on a server."""

from __future__ import annotations

from tasks import catalog, io
from tasks.publishing import db, store
from tasks.publishing.targets import Publication, PublishTarget


class SqliteStore(PublishTarget):
    name = "sqlite"
    outputs = (catalog.entry("store"), catalog.entry("publish_manifest"))
    record = True

    def outputs_for(self, cfg) -> tuple[catalog.Entry, ...]:
        return (catalog.entry("store" if cfg.publish.url is None else "publish_manifest"),)

    def publish(self, pub: Publication, cfg) -> dict:
        database = db.from_config(cfg)
        summary, pub.current = store.stage_store(
            pub.txn, pub.forecasts, pub.lineage, database, pub.keep
        )
        if cfg.publish.url is not None:
            manifest = store.manifest(summary, pub.current)
            pub.write(catalog.path("publish_manifest"), lambda tmp: io.write_json_to(tmp, manifest))
            summary["manifest"] = manifest
        return summary


TARGET = SqliteStore()

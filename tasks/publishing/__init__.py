"""Publishing: the forecast that ships, written atomically with its lineage.

Owns the published frame and the champion's metadata (`forecasts`), the store behind a database
URL (`db`, `store`, `store_schema`), the all-or-nothing file transaction (`transaction`), the
publish targets (`targets/`, one module per target), lineage (`lineage`) and model ids
(`model_id`).

May import: shared modules, tasks.features, tasks.model, tasks.evaluation. Never: monitoring.
"""

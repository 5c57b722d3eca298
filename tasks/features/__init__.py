"""Features: the validated frame made into what a model reads, without leaking the future.

Owns the per-series split and leak-free scaling (`scaling`, fitted on each series' training part
only), the window geometry and zero-copy windows (`windows`), the covariate channels (`covariates`)
and the `Prepared` bundle the later stages share (`prepare`).

May import: the shared modules beside this package (tasks.config, tasks.columns, tasks.io, ...).
Never: ingest, model, evaluation, publishing, monitoring (they use it, not the other way).
"""

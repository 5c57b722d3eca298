"""Stage logic of the forecasting pipeline: pure functions; file I/O sits in `flows.stages`.

Packages by concern, in the direction of the imports (each may import only those before it; the
package docstrings say which, tests/test_layout.py checks it):

  ingest/       read the source and validate it (sources/, the pandera schema, quarantine)
  features/     split, leak-free scaling, windows, covariates: the `Prepared` bundle
  model/        the Keras network, its spec, training, strategies, refit, prediction, export
  evaluation/   metrics, candidates, rolling-origin backtest, intervals, per-series choice, gate
  publishing/   the published frame, the store behind a database URL, targets, transaction
  monitoring/   realized accuracy and drift of what was published

Shared by all of them, beside the packages: config/ (params.yaml, typed), catalog (every path),
columns, errors, io, textfmt, timefmt, charts, progress, faults, safe_state, plugins, tflog.
"""

from tasks import tflog

# Before anything imports TensorFlow: its C++ log noise stays off the terminal (tasks/tflog.py).
tflog.quiet()

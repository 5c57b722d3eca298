"""Evaluation: how good each candidate is, which one serves each series, and whether to publish.

Owns the metrics (`metrics`, small pure numpy functions), the statistical and naive candidates
(`baselines`, `statistical`), the rolling-origin backtest (`backtest`), conformal intervals
(`intervals`), the per-series choice (`selection`; `short` for the series too short for the
LSTM), the evaluate step that ties them together
(`evaluate`) and the publishing gate (`gate`).

May import: shared modules, tasks.features, tasks.model. Never: publishing, monitoring.
"""

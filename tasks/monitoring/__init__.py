"""Monitoring: published forecasts against the actuals that arrive, and input drift.

Owns the pure analysis (`analysis`: realized accuracy, the alert, drift), the monitor's tables in
the forecast store (`store`) and the one coupling back into publishing, the drift gate (`gate`).

May import: shared modules, tasks.evaluation (the backtest's metric definitions) and
tasks.publishing (the store it reads). Nothing imports monitoring but flows/.
"""

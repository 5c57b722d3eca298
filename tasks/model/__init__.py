"""Model: the global recurrent forecaster, from its spec to its weights and predictions.

Owns the spec and registries of choices (`spec`), the pure-Keras network (`network`), where it
trains (`strategy`, `multiworker_compat`), training and its resume state (`train`), the refit
through the last observation (`refit`), predicting with a trained model (`forecast`) and the
TFLite export (`export`). TensorFlow is imported inside functions, never at import time.

May import: shared modules and tasks.features. Never: evaluation, publishing, monitoring.
"""

"""Model forecasts in original units, one window per series (shared by evaluate and publish)."""

from __future__ import annotations

import numpy as np

from tasks.errors import PipelineError
from tasks.prepare import Prepared


class DivergedModel(PipelineError):
    """The model produced NaN or infinite forecasts."""


def forecast_original(prepared: Prepared, model, starts: np.ndarray, batch_size: int = 4096):
    """(S, horizon) forecasts in original units for the windows at `starts` (one per series)."""
    x = prepared.geometry.inputs(prepared.values, starts).astype(np.float32)  # (S, L, 1)
    scaled = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
    out = np.stack([prepared.to_original(s, scaled[s]) for s in range(len(starts))])
    bad = ~np.isfinite(out)
    if bad.any():
        raise DivergedModel(
            f"the model produced {int(bad.sum())} non-finite forecasts of {out.size} "
            "(training diverged?): lower training.learning_rate or training.clipnorm and rerun; "
            "nothing was evaluated or published"
        )
    return out


def load_model(path):
    """Load a saved `.keras` model; importing tasks.model registers its custom layers."""
    import keras

    import tasks.model  # noqa: F401

    return keras.saving.load_model(path)

"""benchmarks/combination_weights.py: the simplex weights fitted on the older folds."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.combination_weights import error, fit_weights


def test_the_weights_recover_the_mix_that_made_the_actuals():
    rng = np.random.default_rng(0)
    parts = rng.normal(size=(3, 200, 6))
    actual = 0.2 * parts[0] + 0.8 * parts[2]
    w = fit_weights(actual, parts)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert w == pytest.approx([0.2, 0.0, 0.8], abs=0.02)
    assert error(actual, np.tensordot(w, parts, axes=1)) < 0.02 * error(actual, parts.mean(0))

"""benchmarks/forward_folds.py: its folds are the pipeline's folds (fold 0 the latest), and the
two ways agree where they must (the earliest fold, fitted the same way by both)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.forward_folds import MODELS, cross_validate, fold_histories, scores
from tasks.evaluation.statistical import forecast_many

H, STEP, SEASON = 4, 2, 4


def _series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / SEASON) + rng.normal(0, 1, n)


def test_only_series_holding_every_fold_with_two_seasons_before_the_earliest_are_kept():
    need = 2 * SEASON + H + 2 * STEP  # 16
    kept = fold_histories([np.ones(need - 1), np.ones(need)], H, STEP, SEASON)
    assert [y.size for y in kept] == [need]


def test_refit_fold_k_is_the_pipelines_fit_on_the_history_before_fold_ks_origin():
    ys = [_series(30, 0), _series(26, 1)]
    preds = cross_validate(ys, H, STEP, SEASON, refit=True, n_jobs=1)
    for k in range(3):
        histories = [y[: y.size - H - k * STEP] for y in ys]
        expected = forecast_many(MODELS, histories, H, SEASON, n_jobs=1)
        for i, name in enumerate(MODELS):
            np.testing.assert_allclose(preds[i, :, k], expected[name], rtol=1e-6)


def test_forward_fits_the_earliest_fold_as_refit_does_and_scores_are_mase():
    ys = [_series(30, 2)]
    refit = cross_validate(ys, H, STEP, SEASON, refit=True, n_jobs=1)
    forward = cross_validate(ys, H, STEP, SEASON, refit=False, n_jobs=1)
    np.testing.assert_allclose(forward[:, :, 2], refit[:, :, 2], rtol=1e-9)
    mase = scores(ys, refit, H, STEP, SEASON)
    y, origin = ys[0], 30 - H
    scale = np.abs(y[SEASON:origin] - y[: origin - SEASON]).mean()
    assert mase[0, 0, 0] == pytest.approx(np.abs(refit[0, 0, 0] - y[origin:]).mean() / scale)

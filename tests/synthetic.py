"""Seeded synthetic many-series sets shared by tests and benchmarks: seasonal, trending,
intermittent and noisy-level series in turn, of mixed lengths (the Dask engine's tests and
benchmarks/distributed.py)."""

from __future__ import annotations

import numpy as np


def mixed_series(
    n: int,
    seed: int,
    season: int,
    lengths: tuple[int, int] = (30, 48),
    constant_every: int | None = None,
    id_width: int = 5,
) -> dict[str, np.ndarray]:
    """`n` series, id `s` + zero-padded index: by index mod 4 a season of `season` steps plus
    noise, a trend, intermittent demand (60 % zeros), a noisy level; lengths drawn from
    [lengths[0], lengths[1]). `constant_every`: every such index (mod 8 == 3 for 8) that would
    be a noisy level is a constant 5.0 instead (MASE undefined there)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        length = int(rng.integers(*lengths))
        t = np.arange(length)
        kind = i % 4
        if kind == 0:
            y = 50 + 10 * np.sin(2 * np.pi * t / season) + rng.normal(0, 2, length)
        elif kind == 1:
            y = 20 + 0.8 * t + rng.normal(0, 1.5, length)
        elif kind == 2:
            y = np.where(rng.random(length) < 0.6, 0.0, rng.integers(1, 9, length)).astype(float)
        elif constant_every is not None and i % constant_every == 3:
            y = np.full(length, 5.0)
        else:
            y = np.abs(rng.normal(30, 6, length))
        out[f"s{i:0{id_width}d}"] = y
    return out

"""A seeded many-series set at the brief's scale: 10,000 monthly series, short ones, zeros.

The competitions' sets the benchmarks read stop at M3 monthly's 1,428 series (M4's 48,000 need a
download the benchmark machines cannot make), so the pipeline's speed and memory at the size a
team brings (10,000 series) are measured on generated series of the kinds those sets hold. Each
series, from its own seeded generator (`seed`, its index):

- smooth (92 %): exp(level + trend + season + AR(1) noise) in logs: level ~ N(7, 1.5); a trend
  of N(0, 0.004) per step, damped toward flat in a third of series; a season of two harmonics,
  amplitude U(0, 0.3), random phase; AR(1) noise with phi U(0, 0.7) and sd U(0.02, 0.12);
- intermittent (8 %): a demand with probability U(0.2, 0.7) each step, of size 1 + Poisson(U(1, 8)),
  else 0 (the zeros issue 22 names).

Lengths (training part): 70 % U(48, 240), 20 % U(20, 47) (short: below the LSTM's need, forecast
by the statistical candidates), 10 % U(241, 400); the test part is the next `horizon` steps of
the same process. Not a competition: figures from it measure speed and memory, and its accuracy
is only a check that the pipeline keeps up with AutoETS on data no one tuned on.
"""

from __future__ import annotations

import numpy as np

SERIES = 10_000
HORIZON = 18
SEASON = 12


def length(rng: np.random.Generator) -> int:
    kind = rng.random()
    if kind < 0.7:
        return int(rng.integers(48, 241))
    if kind < 0.9:
        return int(rng.integers(20, 48))
    return int(rng.integers(241, 401))


def smooth(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n)
    slope = rng.normal(0, 0.004)
    if rng.random() < 1 / 3:  # damped: the trend fades over about 1 / (1 - phi) steps
        phi = rng.uniform(0.9, 0.98)
        trend = slope * (1 - phi ** (t + 1)) / (1 - phi)
    else:
        trend = slope * t
    phase = rng.uniform(0, 2 * np.pi, 2)
    amp = rng.uniform(0, 0.3)
    season = amp * (
        np.sin(2 * np.pi * t / SEASON + phase[0]) + 0.5 * np.sin(4 * np.pi * t / SEASON + phase[1])
    )
    phi, sd = rng.uniform(0, 0.7), rng.uniform(0.02, 0.12)
    shocks = rng.normal(0, sd, n)
    noise = np.empty(n)
    noise[0] = shocks[0]
    for i in range(1, n):
        noise[i] = phi * noise[i - 1] + shocks[i]
    return np.exp(rng.normal(7, 1.5) + trend + season + noise)


def intermittent(rng: np.random.Generator, n: int) -> np.ndarray:
    demand = rng.random(n) < rng.uniform(0.2, 0.7)
    return np.where(demand, 1 + rng.poisson(rng.uniform(1, 8), n), 0).astype(np.float64)


def one(index: int, seed: int, horizon: int = HORIZON) -> tuple[str, np.ndarray, np.ndarray]:
    """(id, training part, test part) of series `index`: the same for the same (index, seed)."""
    rng = np.random.default_rng([seed, index])
    n = length(rng)
    y = intermittent(rng, n + horizon) if rng.random() < 0.08 else smooth(rng, n + horizon)
    return f"S{index:05d}", y[:n], y[n:]


def synthetic_series(
    n: int | None = None, stride: int = 1, horizon: int = HORIZON, seed: int = 0
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Every `stride`th of the SERIES series, first n (as m3_test.m3_series takes a subset)."""
    return [one(i, seed, horizon) for i in range(0, SERIES, stride)[:n]]

"""Number formats of the benchmark table (benchmarks/summary.py) and its studies' rows."""

from __future__ import annotations


def num(x: float) -> str:
    """Compact figure: 1.04M, 11.1k, 826, 16.7, 0.284."""
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:.3g}M"
    if a >= 1e4:
        return f"{x / 1e3:.3g}k"
    if a >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def rate(x: float) -> str:
    """Throughput: 1.04M, 11.1k, 472."""
    return f"{x / 1e6:.3g}M" if x >= 1e6 else f"{x / 1e3:.3g}k" if x >= 1e3 else f"{x:.0f}"

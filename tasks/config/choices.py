"""The registries of the model's choices, free of Keras: what params.yaml may name.

`CELLS` is the one registry of recurrent cells: tasks.config validates `model.cell` against it
and tasks.model.network builds the cell it names, so adding a cell is one entry here (the Keras
layer's class name and the options that keep it cuDNN-eligible). `MODES` and `PRECISIONS` are the
other choices, validated the same way. They live with the config, below the model package, so
the config can check a choice without importing the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: a `keras.layers` class and the options that keep it cuDNN-eligible
    beyond the ones every cell gets (tanh/sigmoid, no recurrent dropout, no unroll, biases)."""

    layer: str  # class name in keras.layers
    options: Mapping[str, object] = field(default_factory=dict)


CELLS: dict[str, Cell] = {
    "lstm": Cell("LSTM"),
    "gru": Cell("GRU", {"reset_after": True}),
}
# direct: one head predicts all horizon steps; recursive: a one-step head fed back.
MODES = ("direct", "recursive")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def one_of(value: str, choices: Iterable[str]) -> str:
    """`value` if it is one of `choices`, else ValueError worded like pydantic's literal error
    ("Input should be 'lstm' or 'gru'"), so the config's message names the choices."""
    names = list(choices)
    if value in names:
        return value
    quoted = [repr(n) for n in names]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    raise ValueError(f"Input should be {listed}")


# ---------------------------------------------------------------- evaluate.candidates
BASELINE_CANDIDATES = ("naive", "seasonal_naive", "drift")
STATISTICAL_CANDIDATES = ("ets", "theta", "ces", "croston", "adida", "tsb")
# Combinations (tasks/evaluation/combinations.py): the plain mean of two or more of these, named
# `mean_` + its parts in this order (mean_ets_theta, mean_lstm_drift_ets). Each holds at least
# one of ETS, Theta and CES: the network and drift alone are no statistical standard.
COMBINATION_PARTS = ("lstm", "drift", "ets", "theta", "ces")
SMOOTHERS = ("ets", "theta", "ces")


def _combinations() -> dict[str, tuple[str, ...]]:
    from itertools import combinations

    out: dict[str, tuple[str, ...]] = {}
    for size in range(2, len(COMBINATION_PARTS) + 1):
        for parts in combinations(COMBINATION_PARTS, size):
            if any(p in SMOOTHERS for p in parts):
                out["mean_" + "_".join(parts)] = parts
    return out


COMBINATIONS: dict[str, tuple[str, ...]] = _combinations()
# Every name `evaluate.candidates` may list.
CANDIDATES = (*BASELINE_CANDIDATES, *STATISTICAL_CANDIDATES, *COMBINATIONS)

"""Saving nested state (dicts, lists, numbers, strings, numpy arrays) in a file whose loading
cannot run code: one .npz holding the arrays and a JSON tree that refers to them, read with
`allow_pickle=False`. Replaces pickle for the scaler and the training resume state: a pickle
planted in models/ or checkpoints/ would run whatever it holds when a stage loaded it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tasks import io

TREE = "__tree__"
ARRAY = "__array__"
TUPLE = "__tuple__"


class UnsafeOrCorruptState(ValueError):
    """The file is not a state file written by `save` (an old pickle, or damaged)."""


def _encode(value, arrays: dict[str, np.ndarray]):
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {ARRAY: key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("state dict keys must be strings")
        return {k: _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, tuple):
        return {TUPLE: [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot save a {type(value).__name__} as state")


def _decode(value, arrays):
    if isinstance(value, dict):
        if ARRAY in value:
            return arrays[value[ARRAY]]
        if TUPLE in value:
            return tuple(_decode(v, arrays) for v in value[TUPLE])
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def save(path: str | Path, state) -> None:
    """Write `state` atomically (a kill mid-write leaves the previous file)."""
    arrays: dict[str, np.ndarray] = {}
    tree = json.dumps(_encode(state, arrays))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{TREE: np.array(tree)}, **arrays)

    io.write_atomic(path, write)


def load(path: str | Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            tree = json.loads(str(z[TREE]))
            arrays = {k: z[k] for k in z.files if k != TREE}
    except (ValueError, KeyError, OSError, EOFError) as err:
        raise UnsafeOrCorruptState(
            f"{path} is not a state file this version writes ({type(err).__name__}); it is not "
            "loaded (an older pickle, or damaged): rerun the stage that writes it"
        ) from None
    return _decode(tree, arrays)

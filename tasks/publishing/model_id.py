"""A model's identity: its weights and its config, not its file's bytes.

A `.keras` file is a zip whose metadata.json carries `date_saved`, so saving the same weights
twice (a resumed training that ends bit-identical) gives two md5s. The store keys a run by this
identity instead (tasks/publishing/store.py run_key), so such a run is not added twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path


def model_id(path: str | Path) -> str:
    """md5 over the model's config (canonical JSON) and every weight array (name, dtype, shape,
    bytes, in name order)."""
    import h5py
    import numpy as np

    h = hashlib.md5()
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        h.update(json.dumps(config, sort_keys=True).encode())
        weights = archive.read("model.weights.h5")
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(io.BytesIO(weights), "r") as f:
        f.visititems(
            lambda name, obj: (
                arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\n{name}:{a.dtype.str}:{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()

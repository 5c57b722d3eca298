"""Keep TensorFlow's C++ log noise off the user's terminal, unless asked for.

`quiet()` runs before TensorFlow is imported (tasks/__init__.py calls it, so every process that
imports project code gets it, whichever module imports TensorFlow first):

- TF_CPP_MIN_LOG_LEVEL=3 unless already set: hides the C++ log lines (`I0000 ...`, `W0000 ...`,
  `E0000 ... NodeDef mentions attribute use_unbounded_threadpool`). An error that matters still
  reaches the user: TensorFlow raises it as a Python exception carrying the message.
- The lines TensorFlow's shared libraries print while they load, before its logging has read
  that variable (`WARNING: All log messages before absl::InitializeLog() ...` and the oneDNN
  notice, once per library): file descriptor 2 is captured during `import tensorflow` and only
  those known lines are dropped; anything else written then is passed on.

Setting TF_CPP_MIN_LOG_LEVEL yourself (e.g. `TF_CPP_MIN_LOG_LEVEL=0`) turns both off: TensorFlow
then logs exactly as it would on its own.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import tempfile

ENV = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "3"
# Set with the default: child processes inherit both, and still count as "not set by the user".
MARK = "FORECAST_TF_QUIET"
LOAD_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on.",
)


def _noise(line: str) -> bool:
    return any(marker in line for marker in LOAD_NOISE)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def __getattr__(self, name):  # get_filename, get_resource_reader, ...: the real loader's
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.inner.exec_module(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                text = captured.read().decode(errors="replace")
                kept = [line for line in text.splitlines() if not _noise(line)]
                if kept:
                    sys.stderr.write("\n".join(kept) + "\n")
                    sys.stderr.flush()


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level `tensorflow` package, once."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import to wrap; and find_spec below must not recurse
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet() -> None:
    """Install the defaults above (idempotent; a no-op once TensorFlow is imported or when the
    user set TF_CPP_MIN_LOG_LEVEL)."""
    user_set = ENV in os.environ and os.environ.get(MARK) != os.environ[ENV]
    if user_set or "tensorflow" in sys.modules:
        return
    os.environ[ENV] = os.environ[MARK] = DEFAULT_LEVEL
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())

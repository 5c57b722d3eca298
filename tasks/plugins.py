"""Registries filled by modules: one module per implementation inside a package (data sources in
tasks/sources/, publish targets in tasks/targets/). Adding an implementation is one new module;
its name is the module's name, and it is known without importing it (so the config can validate
a choice before anything heavy loads)."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path


def names(package: str) -> tuple[str, ...]:
    """Implementation names in `package`: its public modules, sorted."""
    path = Path(importlib.util.find_spec(package).origin).parent
    return tuple(
        sorted(m.name for m in pkgutil.iter_modules([str(path)]) if not m.name.startswith("_"))
    )


def load(package: str, name: str, attribute: str):
    """`attribute` of module `package.name`; a clear error naming the known ones otherwise."""
    known = names(package)
    if name not in known:
        raise ValueError(
            f"unknown {package.rsplit('.', 1)[-1]} {name!r}; one of {', '.join(known)}"
        )
    impl = getattr(importlib.import_module(f"{package}.{name}"), attribute, None)
    if impl is None:
        raise ValueError(f"{package}.{name} defines no {attribute}")
    return impl

"""Registries filled by modules: one module per implementation inside a package (data sources in
tasks/ingest/sources/, publish targets in tasks/publishing/targets/). Adding an implementation is
one new module; its name is the module's name, and it is known without importing it (so the config
can validate a choice before anything heavy loads)."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path


def names(package: str) -> tuple[str, ...]:
    """Implementation names in `package`: its public modules, sorted."""
    # The directory from the top package's location: find_spec of a subpackage would import its
    # parents (tasks.ingest, tasks.publishing), and the config checks a name before anything loads.
    top, *rest = package.split(".")
    path = Path(next(iter(importlib.util.find_spec(top).submodule_search_locations))).joinpath(
        *rest
    )
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

"""The declaration list: which stages the pipeline has, in order.

Adding a stage is one new module `flows/stages/<name>.py` holding `STAGE = Stage(...)` and one
line here; then `python -m flows.dvcgen` regenerates dvc.yaml. The stage modules do not import
this list (it is not a code dep of any stage), so adding a stage reruns none of the others.
"""

from __future__ import annotations

import importlib
from functools import cache

from flows.stage import Stage
from tasks import catalog

STAGE_MODULES: tuple[str, ...] = (
    "flows.stages.ingest",
    "flows.stages.monitor",
    "flows.stages.prepare",
    "flows.stages.train",
    "flows.stages.evaluate",
    "flows.stages.publish",
)


class RegistryError(ValueError):
    """The declarations contradict each other (a stage reads what nothing wrote before it)."""


def load_stage(module: str) -> Stage:
    stage = getattr(importlib.import_module(module), "STAGE", None)
    if not isinstance(stage, Stage):
        raise RegistryError(f"{module} declares no `STAGE = Stage(...)`")
    return stage


def check(stages: tuple[Stage, ...]) -> None:
    """Every key is in the catalog; each input is a source or written by an earlier stage; no
    artifact has two writers; names are unique."""
    written: dict[str, str] = {}
    names: set[str] = set()
    problems = []
    for stage in stages:
        if stage.name in names:
            problems.append(f"two stages named {stage.name!r}")
        names.add(stage.name)
        for key in (*stage.reads, *stage.optional, *stage.writes, *stage.state, *stage.scratch):
            if key not in catalog.CATALOG:
                problems.append(f"{stage.name}: unknown artifact {key!r}")
        for key in (*stage.reads, *stage.optional):
            e = catalog.CATALOG.get(key)
            if e is not None and e.kind != "source" and key not in written:
                problems.append(f"{stage.name} reads {key!r}, which no earlier stage writes")
        for key in stage.writes:
            if key in written:
                problems.append(f"{key!r} is written by both {written[key]} and {stage.name}")
            written[key] = stage.name
    # State may also be an output a stage writes given the config (publish: the store).
    from tasks.config import Config

    for stage in stages:
        written.update(dict.fromkeys(stage.outputs(Config()), stage.name))
    for stage in stages:
        for key in stage.state:
            if key not in written:
                problems.append(f"{stage.name} reads state {key!r}, which no stage writes")
    if problems:
        raise RegistryError("stage declarations: " + "; ".join(problems))


@cache
def stages(modules: tuple[str, ...] = STAGE_MODULES) -> tuple[Stage, ...]:
    loaded = tuple(load_stage(m) for m in modules)
    check(loaded)
    return loaded


def by_name(name: str, modules: tuple[str, ...] = STAGE_MODULES) -> Stage:
    for stage in stages(modules):
        if stage.name == name:
            return stage
    known = ", ".join(s.name for s in stages(modules))
    raise RegistryError(f"unknown stage {name!r}; one of {known}")

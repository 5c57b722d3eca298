"""What a stage is: one declared object per `flows/stages/<stage>.py`.

A `Stage` says what the stage reads and writes (keys of the artifact catalog, tasks/catalog.py),
which params keys it depends on, its runner (`run(cfg, ctx) -> dict`: the file I/O around the
pure functions in tasks/), its Prefect options and the UI artifacts it emits. Everything else is
generic and reads only these declarations: the pipeline flow (flows/pipeline.py), the per-stage
command `python -m flows.stages STAGE` (what dvc.yaml runs) and dvc.yaml itself
(flows/dvcgen.py).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks import catalog

if TYPE_CHECKING:
    from tasks.config import Config

ROOT = Path(__file__).resolve().parents[1]
# Project packages whose modules count as a stage's code (its import closure).
PROJECT_PACKAGES = ("tasks", "flows")
# Modules in every closure that are not code deps. tasks/catalog.py holds only the path table:
# each path a stage uses is already one of its deps/outs in dvc.yaml, so a changed path reruns
# exactly the stages whose dvc.yaml entries changed, and a new entry (a new stage) reruns none.
NOT_CODE_DEPS = frozenset({"tasks/catalog.py"})


@dataclass(frozen=True)
class StageContext:
    """What a stage may need from the run that executes it."""

    flow_run_id: str | None = None  # the Prefect flow run, when there is one (lineage)


NO_RUN = StageContext()  # a stage run outside any flow run (`dvc repro` without Prefect)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Config, StageContext], dict]
    # Catalog keys: inputs (DVC deps), outputs (DVC outs/metrics/plots), and outputs of other
    # stages read as state, not deps (the champion: a dep would be a cycle through publish).
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    params: tuple[str, ...]
    # Outputs that depend on the config (publish: the chosen targets' files), as catalog keys.
    writes_for: Callable[[Config], tuple[str, ...]] | None = None
    state: tuple[str, ...] = ()
    # Modules the stage imports by name given the config (the chosen publish targets, data
    # source): code deps like its static imports.
    plugins: Callable[[Config], tuple[str, ...]] | None = None
    # New catalog entries this stage brings (a stage added later, e.g. in a plugin or a test).
    declares: tuple[catalog.Entry, ...] = ()
    # Prefect task options for this stage given the config (retries, retry_condition_fn, ...).
    task_options: Callable[[Config], dict[str, Any]] | None = None
    # Prefect artifacts for the UI after the stage ran or was skipped: (cfg, header) -> None.
    ui_artifacts: Callable[[Config, str], None] | None = None
    description: str = ""
    # Scratch files (catalog kind "scratch") the stage uses; neither deps nor outs.
    scratch: tuple[str, ...] = field(default=())
    # Inputs read only when their params key is set (catalog.is_set): deps only then.
    optional: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Declared entries join the catalog as soon as the stage is defined (imported).
        for entry in self.declares:
            catalog.register(entry)

    def inputs(self, cfg: Config) -> tuple[str, ...]:
        """Catalog keys the stage reads under `cfg`: `reads`, and the optional ones set."""
        return (*self.reads, *(k for k in self.optional if catalog.is_set(k, cfg)))

    def outputs(self, cfg: Config) -> tuple[str, ...]:
        extra = self.writes_for(cfg) if self.writes_for else ()
        return (*self.writes, *(k for k in extra if k not in self.writes))

    @property
    def module(self) -> str:
        return f"flows.stages.{self.name}"

    def path(self, key: str, cfg: Config | None = None) -> Path:
        if key not in (*self.reads, *self.optional, *self.writes, *self.state, *self.scratch):
            raise catalog.CatalogError(
                f"stage {self.name!r} uses artifact {key!r} it does not declare "
                "(add it to reads, writes, state or scratch)"
            )
        return catalog.path(key, cfg)


# ---------------------------------------------------------------- import closure
def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module named by an import statement anywhere in the file (also inside functions:
    the stages import TensorFlow-heavy modules lazily, and those are code deps all the same)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.add(target)
            # `from tasks import io` imports the module tasks.io
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def import_closure(module: str) -> list[str]:
    """Repository-relative files of the project modules `module` imports, transitively, with
    the packages a dotted import executes (importing tasks.io runs tasks/__init__.py)."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        # Importing a.b.c executes a/__init__.py and a/b/__init__.py first.
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in seen:
                continue
            file = _module_file(prefix)
            if file is None:
                continue
            seen[prefix] = file
            todo.extend(_imports(file, prefix))
    files = {str(p.relative_to(ROOT)) for p in seen.values()}
    return sorted(files - NOT_CODE_DEPS)


def code_deps(stage: Stage, cfg: Config) -> list[str]:
    """The stage's code: its module's import closure, the closures of the plugin modules the
    config makes it load, and the generic stage runner `python -m flows.stages` around it."""
    modules = [stage.module, "flows.stages.__main__"]
    if stage.plugins:
        modules += stage.plugins(cfg)
    return sorted({f for m in modules for f in import_closure(m)})

"""The floor plan holds: imports run one way and modules stay small.

Read from the source with ast (nothing imported), like flows/stage.py reads a stage's code deps.
An import counts wherever it is written (deferred imports inside functions too: they run all the
same), except under `if TYPE_CHECKING:`, which never runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("tasks", "flows", "benchmarks")
MAX_LINES = 500

# The packages of tasks/ and what each may import besides itself; SHARED is every module at the
# top of tasks/ (config, catalog, io, errors, ...), which may import only each other. Order is
# the direction: a package never imports one listed after it (which uses it).
SHARED = "shared"
MAY_IMPORT: dict[str, set[str]] = {
    SHARED: set(),
    "tasks.ingest": {SHARED},
    "tasks.features": {SHARED},
    "tasks.model": {SHARED, "tasks.features"},
    "tasks.evaluation": {SHARED, "tasks.features", "tasks.model"},
    "tasks.publishing": {SHARED, "tasks.features", "tasks.model", "tasks.evaluation"},
    "tasks.monitoring": {SHARED, "tasks.evaluation", "tasks.publishing"},
}
# Beyond tasks/: benchmarks -> flows -> tasks, never back.
TOP_MAY_IMPORT = {"tasks": {"tasks"}, "flows": {"tasks", "flows"}, "benchmarks": set(TOP)}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    files = {}
    for top in TOP:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports at run time (`from pkg import mod` names the module)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if full in known:
                    found.add(full)
                elif module in known:
                    found.add(module)
    found.discard(name)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path a -> b -> ... -> a, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "tasks":
        return parts[0]
    candidate = ".".join(parts[:2])
    return candidate if candidate in MAY_IMPORT else SHARED


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        top, pkg = module.split(".")[0], package_of(module)
        for target in sorted(targets):
            if target.split(".")[0] not in TOP_MAY_IMPORT[top]:
                problems.append(f"{module} imports {target} ({top} may not import it)")
                continue
            if top != "tasks":
                continue
            target_pkg = package_of(target)
            if target_pkg != pkg and target_pkg not in MAY_IMPORT[pkg]:
                problems.append(
                    f"{module} imports {target}: {pkg} may import only "
                    f"{', '.join(sorted(MAY_IMPORT[pkg])) or 'shared modules'}"
                )
    return problems


def test_no_import_circle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


def test_imports_follow_the_declared_direction():
    assert direction_violations(import_graph()) == []


def test_no_module_over_the_line_limit():
    long = {
        str(p.relative_to(ROOT)): n
        for p in module_files().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_package_says_what_it_owns_and_may_import():
    for pkg in MAY_IMPORT:
        if pkg == SHARED:
            continue
        doc = ast.get_docstring(
            ast.parse((ROOT / pkg.replace(".", "/") / "__init__.py").read_text())
        )
        assert doc and "May import" in doc, f"{pkg}/__init__.py: no 'May import' in its docstring"


def test_every_tasks_module_belongs_to_a_declared_package_or_is_shared():
    # A new package under tasks/ must be placed in the direction table above.
    packages = {
        f"tasks.{p.name}" for p in (ROOT / "tasks").iterdir() if (p / "__init__.py").is_file()
    }
    assert packages - set(MAY_IMPORT) == {"tasks.config"}  # config is a shared package


# The checks themselves catch what they exist for (on a copy, never on the real tree).
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for top in TOP:
        (tmp_path / top).mkdir(exist_ok=True)
    return tmp_path


def test_a_circle_is_found_even_through_a_deferred_import(tmp_path):
    root = _tree(
        tmp_path,
        {
            "flows/__init__.py": "",
            "flows/a.py": "from flows.b import x\n",
            "flows/b.py": "def x():\n    from flows import a\n",
        },
    )
    assert find_cycle(import_graph(root)) == ["flows.a", "flows.b", "flows.a"]


def test_a_type_checking_import_is_no_circle(tmp_path):
    root = _tree(
        tmp_path,
        {
            "flows/__init__.py": "",
            "flows/a.py": "from flows.b import x\n",
            "flows/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from flows.a import y\nx = 1\n",
        },
    )
    assert find_cycle(import_graph(root)) is None


@pytest.mark.parametrize(
    ("importer", "imported", "expected"),
    [
        ("tasks/model/m.py", "from tasks.evaluation import metrics\n", "tasks.model.m imports"),
        ("tasks/io2.py", "from tasks.publishing import store\n", "tasks.io2 imports"),
        ("tasks/model/m.py", "from flows import cli\n", "tasks.model.m imports flows.cli"),
    ],
)
def test_an_import_against_the_direction_is_reported(tmp_path, importer, imported, expected):
    files = {f"{p.replace('.', '/')}/__init__.py": "" for p in MAY_IMPORT if p != SHARED}
    files |= {
        "tasks/__init__.py": "",
        "tasks/evaluation/metrics.py": "",
        "tasks/publishing/store.py": "",
        "flows/__init__.py": "",
        "flows/cli.py": "",
        importer: imported,
    }
    problems = direction_violations(import_graph(_tree(tmp_path, files)))
    assert any(p.startswith(expected) for p in problems), problems

"""The shape of imageforge/ that docs/ARCHITECTURE.md promises: small modules, a one-way import
graph, the project's own modules imported at module level, and mypy clean.

These read the real package (its files, its imports, real interpreters and the real mypy);
nothing here is a list of expected module names that could drift from the code.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "imageforge"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module (or package) an imported name lives in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str, bool]]:
    """(line, imported module, at module level) for every import of an imageforge module.

    ``from imageforge.x import y`` imports ``imageforge.x.y`` when that is a module, else
    ``imageforge.x``; a package's ``__init__`` always runs first, so it counts too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for name in names:
            owner = _owner(name, modules) if name.startswith("imageforge") else None
            if owner and owner != module:
                found.append((node.lineno, owner, id(node) in top_level))
    return found


def test_no_module_of_imageforge_is_over_400_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in _modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_the_import_graph_of_imageforge_has_no_cycle():
    modules = _modules()
    graph = {m: {target for _, target, _ in _imports(m, p, modules)} for m, p in modules.items()}
    # depth-first search for a back edge; report the cycle it closes
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walk saw the package


def test_imageforge_modules_are_imported_at_module_level_unless_a_comment_says_why():
    """A function-level import of the project's own code hides a cycle or a cost; one is kept
    only to keep a heavy third-party import lazy, and the comment above it says so."""
    modules = _modules()
    unexplained = []
    for module, path in modules.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for lineno, target, top in _imports(module, path, modules):
            if top:
                continue
            context = " ".join(lines[max(0, lineno - 6) : lineno]).lower()
            if "lazy" not in context:
                unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{lineno} ({target})")
    assert sorted(set(unexplained)) == []


def _import_alone(module: str) -> tuple[str, int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True, text=True, timeout=120, cwd=PACKAGE.parent,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    return module, proc.returncode, proc.stderr


def test_every_module_imports_by_itself_in_a_fresh_interpreter():
    """Each module alone, first in its process: no module works only because another one
    happened to be imported before it (what an import cycle looks like at run time)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_import_alone, sorted(_modules())))
    failed = {m: (err.strip().splitlines() or [""])[-1] for m, code, err in results if code}
    assert failed == {}
    assert len(results) > 50


def test_mypy_finds_nothing_in_imageforge():
    """mypy over the package, configured by pyproject.toml, as the README's test command runs
    it: CI keeps the types honest."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "imageforge"],
        capture_output=True, text=True, timeout=600, cwd=PACKAGE.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout


def test_the_architecture_module_table_lists_every_module_and_nothing_else():
    """docs/ARCHITECTURE.md's table names each module of imageforge/ (without the
    ``imageforge.`` prefix), so the map a newcomer reads cannot drift from the code."""
    doc = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = doc.split("## Package layout (imageforge/)", 1)[1].split("\n## ", 1)[0]
    listed = {  # `module` rows, and **package/** rows that head a group
        line.split("|")[1].strip().strip("`*").rstrip("/").replace("/", ".")
        for line in section.splitlines()
        if line.startswith(("| `", "| **"))
    }
    actual = {m.removeprefix("imageforge.") for m in _modules() if m != "imageforge"}
    assert sorted(actual - listed) == [], "modules missing from docs/ARCHITECTURE.md"
    assert sorted(listed - actual) == [], "docs/ARCHITECTURE.md lists modules that do not exist"

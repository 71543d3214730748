"""The packages' layering: no import cycles between modules, no package importing a layer above.

Every `import` in model/, server/, training/, clients/ and bench/ is read with `ast`, wherever it
stands (module level, inside functions, under `if TYPE_CHECKING:`), so type-only imports count.
Run alone: `.venv/bin/python -m pytest tests/test_layers.py -q`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "server", "training", "clients", "bench")
# A package may import only the packages listed for it (and itself, and third-party code).
# clients/ speaks only the public protocol, so it imports none of the project's packages.
ALLOWED = {
    "model": set(),
    "server": {"model"},
    "training": {"model"},
    "clients": set(),
}
MAX_PRODUCTION_LINES = 400  # one job per module (the house style)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports: `from a.b import c` names a.b.c when that is a module,
    else a.b; relative imports are resolved against the module's package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` where c is a name
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_sees_imports_of_every_kind():
    graph = import_graph()
    assert "server.realtime.session" in graph["server.realtime.endpoint"]  # module level
    assert "model.runtime" in graph["server.app"]  # under `if TYPE_CHECKING:`


def test_find_cycle_reports_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_type_only_imports_included():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_a_layer_above_it(package):
    allowed = ALLOWED[package] | {package}
    upward = sorted(f"{name} → {target}" for name, targets in import_graph().items()
                    if name.split(".")[0] == package for target in targets
                    if target.split(".")[0] not in allowed)
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_every_production_module_has_at_most_400_lines():
    files = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    files.append(ROOT / "icot.py")
    long = sorted(f"{path.relative_to(ROOT)}: {n} lines" for path in files
                  if (n := len(path.read_text().splitlines())) > MAX_PRODUCTION_LINES)
    assert not long, "modules over the limit:\n" + "\n".join(long)

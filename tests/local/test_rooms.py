"""The platform's packages import in one direction: no module of `modelplane/local` reaches another
that reaches back (counting imports made inside functions and for type checking only), and nothing
below the command line imports it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The platform's packages, each importing only those after it (and the shared modules at local/).
ROOMS = ("controllers", "gateway", "api", "replicas")
BELOW_THE_CLI = ("local", "server", "protocol", "control", "api", "graph", "runtimes", "storage", "agent")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(path): path for path in (ROOT / package.replace(".", "/")).rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of `known` a module imports, and every other module it names in an import."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    known = modules(package)
    return {
        name: {target for target in imports(path, known) if target in known} for name, path in known.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_platform_imports_one_that_imports_it_back():
    assert cycles(import_graph("modelplane.local")) == []


def test_each_room_imports_only_the_rooms_below_it():
    def room(module: str) -> str | None:
        part = module.split(".")[2] if module.count(".") >= 2 else None
        return part if part in ROOMS else None

    reaching_up = [
        f"{name} imports {target}"
        for name, targets in import_graph("modelplane.local").items()
        for target in targets
        if room(name) and room(target) and ROOMS.index(room(target)) < ROOMS.index(room(name))
    ]
    assert reaching_up == []


def test_the_cycle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_below_the_command_line_imports_it():
    reaching_up = [
        f"{name} imports {target}"
        for package in BELOW_THE_CLI
        for name, path in modules(f"modelplane.{package}").items()
        for target in imports(path, {})
        if target == "modelplane.cli" or target.startswith("modelplane.cli.")
    ]
    assert reaching_up == []

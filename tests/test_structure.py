"""Structure of the library, checked statically: small modules, no import cycles, declared dependencies.

These are the rules of DEVELOPERS.md ("small modules with one job each") and of a clean install made
checkable, so they do not erode one change at a time:

- no module in ``src/equitable_fl`` is over ``MAX_LINES`` lines;
- the graph of ``equitable_fl`` imports has no cycle. It is built with :mod:`ast` from every ``import``
  statement anywhere in a module, function-level ones included (a lazy import hides a cycle from the
  interpreter until the function runs, it does not remove it); only ``if TYPE_CHECKING:`` blocks are
  skipped, since they never run. Relative imports are resolved, and ``from pkg import name`` points at
  the submodule ``pkg.name`` when there is one, else at ``pkg``;
- every third-party module that ``src/`` imports comes from a distribution declared in
  ``pyproject.toml`` (so a fresh ``pip install .`` has it), and every declared one is pinned in
  ``requirements/lock.txt`` (so that install is reproducible).

Nothing is imported to check this: the sources are parsed, so the test is fast and cannot be fooled by
import side effects.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "equitable_fl"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name, for its ``__init__``)."""
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """All nodes below ``node``, leaving out the bodies of ``if TYPE_CHECKING:`` (but not their else)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield stmt
                yield from _runtime_nodes(stmt)
            continue
        yield child
        yield from _runtime_nodes(child)


def imported_names(name: str, path: Path) -> Iterator[str]:
    """Absolute dotted names imported by a module; ``from a import b`` gives ``a.b``.

    Whether ``a.b`` is a module or a name defined in ``a`` is left to the caller, who knows the modules.
    """
    is_package = path.name == "__init__.py"
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                yield base if alias.name == "*" else f"{base}.{alias.name}"


def _own_module(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is a module of the package, if any."""
    known = modules()
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """Module → package modules it imports (no self-edges)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules().items():
        targets = set()
        for dotted in imported_names(name, path):
            if dotted == PACKAGE or dotted.startswith(PACKAGE + "."):
                target = _own_module(dotted)
                if target is not None and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path ``a → … → a``) per strongly connected component with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the package is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")  # impossible for an SCC


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read a distribution name from requirement {requirement!r}"
    return _normalise(match.group(1))


def declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_requirement_name(r) for r in project["dependencies"]}


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module → the package modules that import it."""
    users: dict[str, set[str]] = {}
    for name, path in modules().items():
        for dotted in imported_names(name, path):
            top = dotted.split(".")[0]
            if top and top != PACKAGE and top not in sys.stdlib_module_names:
                users.setdefault(top, set()).add(name)
    return users


# ----------------------------------------------------------------------------------------------------


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_imports_found_anywhere_resolved_and_type_checking_skipped(tmp_path: Path) -> None:
    """The graph builder itself: the cycle check below is only as good as the edges it finds."""
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from ..other import thing\n"
        "if TYPE_CHECKING:\n"
        "    from equitable_fl import hidden\n"
        "else:\n"
        "    import equitable_fl.shown\n"
        "def f():\n"
        "    import equitable_fl.lazy.inner\n",
        encoding="utf-8",
    )
    names = set(imported_names("equitable_fl.pkg.mod", source))
    assert {"equitable_fl.pkg.sibling", "equitable_fl.other.thing", "equitable_fl.shown"} <= names
    assert "equitable_fl.lazy.inner" in names
    assert not any("hidden" in n for n in names)
    init = tmp_path / "__init__.py"
    init.write_text("from .sub import x\n", encoding="utf-8")
    assert "equitable_fl.pkg.sub.x" in set(imported_names("equitable_fl.pkg", init))

    graph = import_graph()
    assert "equitable_fl.report.figures" in graph["equitable_fl.stages.report"]  # `from pkg import mod`
    assert "equitable_fl.report.figures.style" in graph["equitable_fl.report.figures.model_size"]


def test_find_cycles_reports_the_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles among equitable_fl modules:\n" + "\n".join(
        " → ".join(cycle) for cycle in cycles
    )


def test_third_party_imports_are_declared() -> None:
    provided_by = importlib.metadata.packages_distributions()
    declared = declared_dependencies()
    problems = []
    for top, users in sorted(third_party_imports().items()):
        distributions = {_normalise(d) for d in provided_by.get(top, [])}
        where = ", ".join(sorted(users))
        if not distributions:
            problems.append(f"{top!r} (imported by {where}) is provided by no installed distribution")
        elif not distributions & declared:
            problems.append(
                f"{top!r} (imported by {where}) comes from {sorted(distributions)}, "
                "which is not in [project].dependencies of pyproject.toml"
            )
    assert not problems, "\n".join(problems)


def test_declared_dependencies_are_pinned() -> None:
    lock = ROOT / "requirements" / "lock.txt"
    pinned = {
        _requirement_name(line)
        for line in lock.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    }
    missing = sorted(declared_dependencies() - pinned)
    assert not missing, f"declared in pyproject.toml but not pinned in {lock.name}: {missing}"

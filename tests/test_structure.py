"""The package's shape: imports flow one way, the command line stays in varxpress.cli.

Imports are read from the source (``ast``), function-local ones included, so a cycle hidden behind a local import
is still a cycle here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "varxpress"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _target(name: str) -> str | None:
    """The module ``name`` refers to (a submodule or a package), None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> list[tuple[ast.stmt, str, bool]]:
    """``(statement, imported module, inside a function)`` for every import of a varxpress module in ``path``."""
    tree = ast.parse(path.read_text())
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]  # a name, or a submodule
        for name in names:
            target = _target(name) if name.startswith("varxpress") else None
            if target and target != "varxpress":  # the root package holds only the version
                out.append((node, target, id(node) in local))
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for _, target, _ in _imports(path):
            if target != module:
                graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package_local_imports_included():
    cycle = find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_import_walk_sees_local_imports():
    """A check of the walk itself: the CLI imports subcommand modules by name (importlib), everything else by
    statement; the engine's module is reached from the pipeline."""
    graph = _graph()
    assert "varxpress.scoring.engine" in graph["varxpress.scoring.pipeline"]
    assert "varxpress.scoring.pipeline" in graph["varxpress.cli.score"]


def test_argparse_only_in_the_command_line_layer():
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("varxpress.cli") or module == "varxpress.__main__":  # the CLI and its entry point
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) else []
            if "argparse" in names:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
            if any(n and n.startswith("varxpress.cli") for n in names):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} (imports varxpress.cli)")
    assert not offenders, "argparse or the CLI used outside varxpress/cli: " + ", ".join(offenders)


def test_a_local_import_of_the_package_says_why_it_is_local():
    """Function-local imports hide dependencies (and cycles); one is kept only with a comment saying why."""
    silent: list[str] = []
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node, _, local in _imports(path):
            here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {here.strip()}"
            if local and "#" not in here and not above.startswith("#") and where not in silent:
                silent.append(where)
    assert not silent, "function-local imports without a reason:\n" + "\n".join(silent)


def test_modules_stay_small_enough_to_have_one_job():
    """A module past ~400 lines has usually taken a second job (docs/architecture.md); split it rather than grow it."""
    limit = 450
    big = {str(p.relative_to(PACKAGE.parent)): n for p in MODULES.values()
           if (n := len(p.read_text().splitlines())) > limit}
    assert not big, f"modules over {limit} lines: {big}"

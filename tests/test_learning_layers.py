"""The learning half and the models keep the command line out: no argparse, no varxpress.cli, no Namespace.

Read from the source (every import statement, function-local ones included), so a lazy import cannot hide one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "varxpress"
LIBRARY = sorted([*(PACKAGE / "learning").rglob("*.py"), *(PACKAGE / "models").rglob("*.py"),
                  PACKAGE / "io" / "tables.py"])


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_module_does_not_import_the_command_line(path: Path) -> None:
    bad = [f"line {n}: {name}" for n, name in _imports(path)
           if name == "argparse" or name == "varxpress.cli" or name.startswith("varxpress.cli.")]
    assert not bad, f"{path.relative_to(PACKAGE)} imports the command line: {bad}"
    assert "Namespace" not in path.read_text(encoding="utf-8"), f"{path.relative_to(PACKAGE)} names a Namespace"


def test_the_walk_sees_the_files_it_guards() -> None:
    names = {str(p.relative_to(PACKAGE)) for p in LIBRARY}
    assert {"learning/dataset.py", "learning/training.py", "learning/tuning/driver.py", "models/xpresso.py",
            "models/network.py", "io/tables.py"} <= names
    assert ("argparse" in {n for _, n in _imports(PACKAGE / "cli" / "prepare.py")})  # the check can see one

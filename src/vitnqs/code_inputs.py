"""The source files a workflow script runs: the script and every vitnqs module it imports,
directly or through other vitnqs modules, read from its import statements (nothing is imported).

Table and figure rules list these files among their inputs, so that an edit to any of them (a
reference energy, a column format, a figure's title) reruns the rule, and no list of modules
kept by hand can fall behind the code.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from vitnqs import _PUBLIC


@lru_cache(maxsize=None)  # each module is parsed once per Snakemake run, not once per rule
def _imported_modules(path: Path) -> frozenset[str]:
    """Dotted names of the vitnqs modules (and names) that a file imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(name for name in names if name.split(".")[0] == "vitnqs")


def _module_file(name: str, package: Path) -> Path | None:
    """src/vitnqs/x.py for vitnqs.x, the module behind a lazily exported name (vitnqs.load_run ->
    vitnqs.trained), None for a name that is no module of the package."""
    parts = name.split(".")[1:]
    if len(parts) == 1 and parts[0] in _PUBLIC:
        parts = _PUBLIC[parts[0]].split(".")[1:]
    path = package.joinpath(*parts).with_suffix(".py") if parts else package / "__init__.py"
    return path if path.is_file() else None


def code_files(script: str | Path, package: str | Path = "src/vitnqs") -> list[str]:
    """The script and, sorted, every file of `package` it runs through its imports."""
    package, found, todo = Path(package), set(), [Path(script)]
    while todo:
        for name in _imported_modules(todo.pop()):
            module = _module_file(name, package)
            if module is not None and module not in found:
                found.add(module)
                todo.append(module)
    return [str(script)] + sorted(str(path) for path in found)

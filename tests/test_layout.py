"""The architecture, checked: the library's modules import each other in one direction only
(no cycles), nothing in the library imports the course, and no function is over complexity 15."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "micrograd_batch"
COURSE = {"lessons", "__main__"}  # the course and its command line sit on top of the library


def library_modules() -> dict[str, Path]:
    """Every module of the library proper, by name (the course package excluded)."""
    return {path.stem: path for path in PACKAGE.glob("*.py") if path.stem not in COURSE}


def imported_siblings(path: Path) -> set[str]:
    """The package modules `path` imports, anywhere in the file (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("micrograd_batch."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("micrograd_batch."))
    return names


def test_nothing_in_the_library_imports_the_course():
    for name, path in library_modules().items():
        assert not imported_siblings(path) & COURSE, f"{name}.py imports the course"


def test_the_library_imports_in_one_direction_only():
    graph = {name: imported_siblings(path) - {"__init__"} for name, path in library_modules().items()
             if name != "__init__"}
    order: list[str] = []  # a topological order exists exactly when there is no cycle
    remaining = dict(graph)
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not (deps & remaining.keys()))
        assert ready, f"an import cycle among {sorted(remaining)}"
        order += ready
        for name in ready:
            del remaining[name]
    assert order.index("engine") < order.index("batch") < order.index("train")
    assert graph["engine"] <= {"_checks"}, "the engine builds on nothing but the argument checks"


def test_no_function_in_the_package_is_over_complexity_15():
    radon = pytest.importorskip("radon.complexity", reason="radon is in the test extra")
    too_complex = [
        f"{path.relative_to(PACKAGE.parent)}:{block.lineno} {block.name} ({block.complexity})"
        for path in sorted(PACKAGE.rglob("*.py"))
        for block in radon.cc_visit(path.read_text(encoding="utf-8"))
        if block.complexity > 15
    ]
    assert not too_complex, too_complex


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



# ---- the line budget (shared/DESIGN.md), like tinygrad's line-count gate: size is a design constraint ----
LIBRARY_BUDGET, ENGINE_BUDGET, MODULE_BUDGET, PUBLIC_NAMES_BUDGET = 3500, 250, 500, 30


def line_counts() -> dict[str, int]:
    """Lines (docstrings and comments included) of every library module, lessons/ excluded."""
    return {str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
            for path in sorted(PACKAGE.rglob("*.py")) if "lessons" not in path.parts}


def test_the_library_keeps_to_its_line_budget():
    counts = line_counts()
    assert sum(counts.values()) <= LIBRARY_BUDGET, f"library is {sum(counts.values())} lines: {counts}"
    assert counts["engine.py"] <= ENGINE_BUDGET, f"engine.py is {counts['engine.py']} lines"
    over = {name: n for name, n in counts.items() if n > MODULE_BUDGET}
    assert not over, f"modules over {MODULE_BUDGET} lines: {over}"


def test_the_public_surface_is_small_and_importable():
    import micrograd_batch

    assert len(micrograd_batch.__all__) <= PUBLIC_NAMES_BUDGET, len(micrograd_batch.__all__)
    assert len(set(micrograd_batch.__all__)) == len(micrograd_batch.__all__)
    for name in micrograd_batch.__all__:
        assert getattr(micrograd_batch, name).__doc__, f"{name} has no docstring"


def test_module_docstrings_are_short_and_point_into_docs():
    long = {name: n for name, n in ((str(p.relative_to(PACKAGE)), len((ast.get_docstring(ast.parse(
        p.read_text(encoding="utf-8"))) or "").splitlines())) for p in PACKAGE.rglob("*.py")) if n > 15}
    assert not long, f"module docstrings over 15 lines: {long}"

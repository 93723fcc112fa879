"""docs/api.md documents exactly the public API, and the reference pages link only to what exists.

* Every name in `micrograd_batch.__all__` appears in backticks in docs/api.md, and the table
  under "## Everything `from micrograd_batch import ...` gives" lists exactly `__all__`.
* Every `from micrograd_batch... import X` written in any docs/*.md code imports, and a name
  documented as `from micrograd_batch import X` is in `__all__`; the names api.md lists under
  "## Imported from their own modules" exist in the module their row names.
* Every local link in docs/*.md resolves (to a file, or to a heading of the linked page).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import micrograd_batch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api.md"
PAGES = sorted(DOCS.glob("*.md"))
TOP_TABLE = "## Everything `from micrograd_batch import ...` gives"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IMPORT = re.compile(r"^\s*from\s+(micrograd_batch(?:\.\w+)*)\s+import\s+(.*)$", re.M)


def backticked(text: str) -> set[str]:
    """Every identifier written in backticks, alone or as the head of a call (`fit(...)`)."""
    names = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        head = IDENTIFIER.match(span.strip())
        if head:
            names.add(head.group())
    return names


def section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    assert heading in text, f"docs/api.md lost its section {heading!r}"
    start = text.index(heading) + len(heading)
    following = re.search(r"^##? ", text[start:], flags=re.M)
    return text[start:start + following.start()] if following else text[start:]


def top_table_names(text: str) -> list[str]:
    """The names column (the second) of the table of importable names."""
    names = []
    for row in section(text, TOP_TABLE).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if row.startswith("|") and len(cells) >= 2 and not set(cells[1]) <= set("-: "):
            names += re.findall(r"`(\w+)`", cells[1]) if cells[1] != "names" else []
    return names


def documented_imports() -> list[tuple[str, str, str]]:
    """(page, module, name) for every `from micrograd_batch[.sub] import name` in the docs."""
    found = []
    for page in PAGES:
        for module, rest in IMPORT.findall(page.read_text(encoding="utf-8")):
            for item in re.split(r"[;#]", rest)[0].strip(" ()").split(","):
                name = item.split(" as ")[0].strip()
                if IDENTIFIER.fullmatch(name):
                    found.append((page.name, module, name))
    return found


def test_every_public_name_is_documented_in_api_md():
    text = API.read_text(encoding="utf-8")
    missing = [name for name in micrograd_batch.__all__ if name not in backticked(text)]
    assert not missing, f"in micrograd_batch.__all__ but not documented in docs/api.md: {missing}"


def test_the_table_of_importable_names_is_exactly_all():
    listed = top_table_names(API.read_text(encoding="utf-8"))
    assert len(listed) == len(set(listed)), f"listed twice: {sorted({n for n in listed if listed.count(n) > 1})}"
    assert sorted(listed) == sorted(micrograd_batch.__all__), (
        f"not exported: {sorted(set(listed) - set(micrograd_batch.__all__))}; "
        f"exported but not in the table: {sorted(set(micrograd_batch.__all__) - set(listed))}")
    for name in listed:
        assert hasattr(micrograd_batch, name), name


def test_every_import_the_docs_show_works():
    imports = documented_imports()
    assert any(page == "api.md" for page, _, _ in imports)
    for page, module, name in imports:
        imported = importlib.import_module(module)
        assert hasattr(imported, name), f"docs/{page}: `from {module} import {name}` fails"
        if module == "micrograd_batch":
            assert name in micrograd_batch.__all__, f"docs/{page} imports {name} from micrograd_batch, not in __all__"


def test_the_names_documented_in_their_own_modules_exist_there():
    rows = [row for row in section(API.read_text(encoding="utf-8"), "## Imported from their own modules").splitlines()
            if row.startswith("| `micrograd_batch.")]
    assert len(rows) >= 3
    for row in rows:
        module_cell, names_cell = [c.strip() for c in row.strip().strip("|").split("|")][:2]
        module = importlib.import_module(module_cell.strip("`"))
        for name in re.findall(r"`(\w+)`", names_cell):
            assert hasattr(module, name), f"docs/api.md: {module.__name__}.{name} does not exist"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_local_link_in_the_docs_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"docs/{page.name} links to {target}, which does not exist"
        if fragment and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", linked.read_text(encoding="utf-8"), flags=re.M)
            assert fragment in {anchor(h) for h in headings}, f"docs/{page.name}: no heading for #{fragment}"


def test_the_checks_fail_on_what_they_guard_against():
    """A name added to __all__ without docs, and a table naming what is not exported, are caught."""
    text = API.read_text(encoding="utf-8")
    assert "brand_new_function" not in backticked(text)
    assert "Value" in backticked(text) and "fit" in backticked("`fit(model, ...)`")
    broken = text.replace("`Adam`", "`Adam`, `Adamax`", 1)
    assert "Adamax" in top_table_names(broken)
    assert sorted(top_table_names(broken)) != sorted(micrograd_batch.__all__)

"""README's worked example and code blocks run as written, with the numbers it shows."""

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_worked_example_prints_what_it_shows():
    result = doctest.testfile(str(README), module_relative=False, verbose=False)
    assert result.attempted >= 5
    assert result.failed == 0


def test_readme_code_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the pictures they write land here
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3, "README lost its python code blocks"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert (tmp_path / "batch_graph.svg").read_text().lstrip().startswith("<")
    assert (tmp_path / "batch_graph.dot").exists()


def test_readme_names_the_command_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 dev.py test" in ci
    assert "python3 dev.py test" in README.read_text(encoding="utf-8")
    assert "python3 dev.py demo" in README.read_text(encoding="utf-8")

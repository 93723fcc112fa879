"""Every notebooks/*.ipynb runs from top to bottom without an error (so a notebook cannot rot), and
each is committed with its outputs, so it reads on GitHub without running it."""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_is_a_tour_notebook():
    assert ROOT / "notebooks" / "tour.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_with_its_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code), "run it and save it with outputs"
    assert sum(bool(cell.outputs) for cell in code) >= len(code) // 2


@pytest.mark.slow
@pytest.mark.usefixtures("needs_matplotlib")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_without_error(path, tmp_path, monkeypatch):
    # the kernel inherits this environment: it finds the package, and writes its pictures to tmp_path
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    if path.name == "tour.ipynb":  # the batch graph and the charts are shown inline
        pictures = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
                    if "image/svg+xml" in o.get("data", {})]
        assert len(pictures) >= 3

"""Notebooks run top to bottom on a reduced size and their closing assertions hold."""

import nbformat
import pytest
from nbclient import NotebookClient


@pytest.mark.slow
def test_initial_state_notebook_runs(root):
    nb = nbformat.read(root / "notebooks" / "00-initial-state.ipynb", as_version=4)
    nb.cells[1].source = "FIRMS = 8_000\nSEEDS = range(2)"
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(root / "notebooks")}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]


def test_notebooks_are_committed_without_outputs(root):
    for path in (root / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name

"""Notebooks run top to bottom on a reduced size and their closing assertions hold.

Each worked notebook has one cell tagged `parameters` that sets its size; here it is replaced
by a small one, with outputs written to a temporary folder."""

import nbformat
import pytest
from nbclient import NotebookClient

REDUCED = {
    "00-initial-state.ipynb": "FIRMS = 8_000\nSEEDS = range(2)",
    "01-will-the-middle-hollow-out.ipynb": "FIRMS = 1_000\nREPLICATIONS = 5\nWORKERS = 2\nOUT = {out!r}",
    "02-what-buys-the-most.ipynb": "REPLICATIONS = 3\nWORKERS = 2\nOUT = {out!r}",
    "03-what-drives-it.ipynb": (
        "FIRMS = 400\nTRAJECTORIES = 4\nSOBOL_N = 32\nSOBOL_FACTORS = 4\nDISCOVERY_SAMPLES = 60\n"
        "MIDDLE_BELOW = 0.2\nWORKERS = 2\nOUT = {out!r}"
    ),
}


def _parameters_cell(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    return tagged[0] if tagged else 1


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REDUCED))
def test_notebook_runs_and_its_claims_hold(root, tmp_path, name):
    nb = nbformat.read(root / "notebooks" / name, as_version=4)
    nb.cells[_parameters_cell(nb)].source = REDUCED[name].format(out=str(tmp_path / "out"))
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(root / "notebooks")}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if name != "00-initial-state.ipynb":
        assert "all checks hold" in printed  # the closing cell ran its assertions to the end


def test_every_notebook_has_reduced_parameters(root):
    assert {p.name for p in (root / "notebooks").glob("*.ipynb")} == set(REDUCED)
    for name in REDUCED:
        nb = nbformat.read(root / "notebooks" / name, as_version=4)
        if name != "00-initial-state.ipynb":
            assert "parameters" in nb.cells[1].metadata.get("tags", []), name


def test_notebooks_are_committed_without_outputs(root):
    for path in (root / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


def test_notebooks_import_only_the_public_api(root):
    import ast

    import mittelbau

    for path in (root / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mittelbau"):
                    assert node.module == "mittelbau", (path.name, node.module)
                    assert {a.name for a in node.names} <= set(mittelbau.__all__), path.name
                if isinstance(node, ast.Import):
                    assert not [a.name for a in node.names if a.name.startswith("mittelbau.")], path.name

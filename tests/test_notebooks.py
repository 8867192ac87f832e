"""The notebooks in notebooks/: committed clean, and executed top to bottom against the installed package.

The execution tests run each notebook with nbclient in a temporary directory
(its working directory), so the figures it saves land in ``tmp_path/figures``.
The kernel imports whatever ``neutrostats`` the test process would import
(the installed package, or the one on an inherited ``PYTHONPATH``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_classification.ipynb", "02_associations.ipynb", "03_survival.ipynb", "04_absolute_risks.ipynb",
            "05_time_updated.ipynb"]


def test_the_expected_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    missing = [name for name in EXPECTED if name not in names]
    assert not missing, f"notebooks/ lacks {missing}; it holds {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    dirty = [
        (i, key)
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code"
        for key, clean in [
            ("outputs", cell.get("outputs") == []),
            ("execution_count", cell.get("execution_count") is None),
            ("metadata.execution", "execution" not in cell.get("metadata", {})),
        ]
        if not clean
    ]
    assert not dirty, f"{path.name}: strip outputs before committing; (cell, field) not clean: {dirty}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [(i, o.get("ename"), o.get("evalue")) for i, o in outputs if o.get("output_type") == "error"]
    assert not errors
    # A warning a notebook expects is caught and printed to stdout; anything on stderr is unexplained.
    stderr = [(i, o.get("text", "")[:500]) for i, o in outputs
              if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr (an unhandled warning?): {stderr}"
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert figures, f"{path.name} saved no PNG into figures/"

"""Each notebook is authored as a jupytext ``py:percent`` file beside it; the pair must not drift apart.

The ``.py`` file is what one edits and reviews; the ``.ipynb`` is what Papermill and JupyterLab
open. Re-pair after editing either: ``make notebooks`` (``jupytext --sync notebooks/*.py``).
"""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py"))


def _cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ()))) for cell in notebook.cells]


def test_every_notebook_has_its_source():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == [p.stem for p in SOURCES]
    assert len(SOURCES) == 6


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_pair_is_in_sync(source):
    paired = jupytext.read(source)
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert _cells(paired) == _cells(notebook), f"{source.name} and its .ipynb differ: run `make notebooks`"
    assert notebook.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_one_parameters_cell_and_no_outputs_committed(source):
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", ())]
    assert len(tagged) == 1
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert notebook.metadata["kernelspec"]["name"] == "python3"

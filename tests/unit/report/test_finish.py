"""workbook.report.finish: a finished run names itself as it will be found, never as ``<stamp>.partial``."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import nbformat

from workbook.report import finish, folders
from workbook.report.notebooks import NotebookResult, RunResult
from workbook.report.redact import Redactor


def _executed_notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell("# Summary\n\nWhat the run found."))
    nbformat.write(nb, str(path))


def test_the_runbook_and_summary_name_the_published_folder(tmp_path):
    # GIVEN a run writing into its partial folder, with one notebook done; its parameters name that folder
    base = tmp_path / "out" / "local"
    partial = folders.new_partial_folder(base, datetime(2026, 12, 7, 20, 0, tzinfo=UTC))
    _executed_notebook(partial / "00-summary.ipynb")
    result = RunResult("local", partial, {"env": "local", "since_s": 3600, "run_folder": str(partial)},
                       notebooks=[NotebookResult("00-summary", "ok", 1.0)], planned=["00-summary"])
    # WHEN the run finishes
    final = finish.finalize(result, Redactor(), lambda line: None, retention=5)
    # THEN the folder is published, and the runbook's header and summary.json name it, not the partial one
    assert final == base / "20261207T200000Z" and final.is_dir() and not partial.exists()
    summary = json.loads((final / "summary.json").read_text())
    assert summary["run"] == "20261207T200000Z"
    assert summary["parameters"]["run_folder"] == str(final)
    page = (final / "runbook.html").read_text()
    assert "20261207T200000Z" in page and ".partial" not in page


def test_a_name_taken_meanwhile_is_the_next_free_one(tmp_path):
    # GIVEN a partial folder whose stamp a finished run already has
    base = tmp_path / "out" / "local"
    partial = folders.new_partial_folder(base, datetime(2026, 12, 7, 20, 0, tzinfo=UTC))
    (base / "20261207T200000Z").mkdir()
    _executed_notebook(partial / "00-summary.ipynb")
    result = RunResult("local", partial, {"run_folder": str(partial)},
                       notebooks=[NotebookResult("00-summary", "ok", 1.0)], planned=["00-summary"])
    # WHEN it finishes, THEN it takes the next free name, and says that one everywhere
    final = finish.finalize(result, Redactor(), lambda line: None, retention=5)
    assert final.name == "20261207T200000Z-2"
    assert json.loads((final / "summary.json").read_text())["parameters"]["run_folder"] == str(final)
    assert "20261207T200000Z-2" in (final / "runbook.html").read_text()

"""The runbook: one HTML page of a run, with no code cells, charts embedded and a table of contents.

The header gives the run's parameters and time; a failed run says where it failed, and the
sections show what ran, with the error where it happened.
"""
from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

from workbook.report.notebooks import KERNEL, RUNBOOK_ORDER, RunResult


def export_runbook(folder: Path, result: RunResult, name: str | None = None) -> Path:
    """One HTML page: header with parameters and time, a table of contents, each notebook without code.

    ``name`` is the run's name as published (the folder without ``.partial``); by default the folder's.
    """
    run_name = name or folder.name
    order = [n for n in RUNBOOK_ORDER if any(r.name == n for r in result.notebooks)]
    status = {r.name: r for r in result.notebooks}
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    book.metadata["title"] = f"Runbook: {result.env}, {run_name}"
    params = "\n".join(f"| `{k}` | `{_short(v)}` |" for k, v in result.parameters.items() if k != "run_folder")
    banner = _banner(result)
    toc = "\n".join(
        f"{i}. [{_title(name)}](#{name}) — {status[name].status}" for i, name in enumerate(order, start=1))
    book.cells.append(nbformat.v4.new_markdown_cell(
        f"# Runbook — `{result.env}`\n\nRun `{run_name}` "
        f"(UTC), generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.{banner}\n\n"
        f"## Contents\n\n{toc}\n\n## Parameters\n\n| parameter | value |\n|---|---|\n{params}\n"))
    for name in order:
        book.cells.append(nbformat.v4.new_markdown_cell(f'<a id="{name}"></a>\n\n# {_title(name)}', id=f"{name}-title"))
        path = folder / f"{name}.ipynb"
        if status[name].status == "skipped" or not path.is_file():
            why = "the run was interrupted before it" if result.status == "interrupted" else \
                "an earlier step failed"
            book.cells.append(nbformat.v4.new_markdown_cell(f"*Not run: {why}.*"))
            continue
        try:
            executed = nbformat.read(str(path), as_version=4)
        except Exception:  # noqa: BLE001 - a notebook cut off mid-write must not lose the rest of the runbook
            book.cells.append(nbformat.v4.new_markdown_cell(
                "*This notebook's file could not be read: it was being written when the run stopped.*"))
            continue
        for index, cell in enumerate(executed.cells):
            cell["id"] = f"{name}-{index:02d}"      # unique across the combined book
            if "parameters" in cell.metadata.get("tags", []) or "injected-parameters" in cell.metadata.get("tags", []):
                continue
            if cell.cell_type == "code":
                # Scrapbook's records are data for summary.json, not something to show.
                cell.outputs = [o for o in cell.get("outputs", [])
                                if not any(k.startswith("application/scrapbook") for k in o.get("data", {}))]
            if cell.cell_type == "markdown":
                # Demote notebook headings under the section heading.
                cell.source = re.sub(r"^(#{1,5}) ", r"#\1 ", cell.source, flags=re.M)
            book.cells.append(cell)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(book)
    target = folder / "runbook.html"
    target.write_text(body, encoding="utf-8")
    return target


def _banner(result: RunResult) -> str:
    """A failed or interrupted run says so first, and why."""
    if result.status == "interrupted":
        reason = result.reason.removeprefix("interrupted ") if result.reason.startswith("interrupted by ") else \
            f"({result.reason})"
        return (f"\n\n> **This run was interrupted** {html.escape(reason)}. The sections below show what "
                "ran before it stopped; a notebook cut off shows the cells it finished, and later ones did not run.\n")
    failed = next((r for r in result.notebooks if r.status == "failed"), None)
    if failed and failed.cell is not None:
        return (f"\n\n> **This run failed** in `{failed.name}` at cell {failed.cell}: "
                f"`{html.escape(failed.error or '')}`. The sections below show what ran, and the error where it "
                "happened.\n")
    if result.status == "failed" or failed:
        reason = result.reason or f"{failed.name}: {failed.error}"
        return (f"\n\n> **This run failed**: {html.escape(reason)}. The sections below show what ran before "
                "it failed.\n")
    return ""


def _title(name: str) -> str:
    number, _, words = name.partition("-")
    return f"{number} · {words.replace('-', ' ').capitalize()}"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."

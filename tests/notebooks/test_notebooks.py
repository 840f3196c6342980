"""Smoke tests of every notebook through Papermill on the local environment, and the runbook in Chromium."""
from __future__ import annotations

import json
import re

import nbformat
import pytest

from tests.notebooks import browser
from tests.secrets_oracle import leaked
from workbook.report import notebooks, record, summary
from workbook.tuning import recommend

CHARTS = {"02-metrics": 1, "03-cold-starts": 2, "04-cost": 1, "05-tuning": 2}


@pytest.mark.parametrize("name", notebooks.RUN_ORDER)
def test_notebook_ran_and_recorded_its_results(local_run, name):
    folder = local_run["folder"]
    executed = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
    assert executed.metadata["papermill"]["parameters"]["env"] == "local"
    parameter_cells = [c for c in executed.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameter_cells) == 1
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    scraps = record.read(folder / f"{name}.ipynb")
    for scrap in summary.SCRAPS.get(name, ()):
        assert scrap in scraps, f"{name} did not record {scrap}"
    pngs = sum("image/png" in o.get("data", {}) for c in executed.cells if c.cell_type == "code"
               for o in c.get("outputs", []))
    assert pngs >= CHARTS.get(name, 0)


def test_recorded_results_are_meaningful(local_run):
    folder = local_run["folder"]
    results = json.loads((folder / "summary.json").read_text())["results"]
    assert results["01-deploy"]["deploy_mode"] == "offline-plan"
    assert "Only a plan" in results["01-deploy"]["deploy_message"]
    health = {row["function"]: row for row in results["02-metrics"]["health"]}
    assert set(health) == {"api-processor", "data-processor", "file-processor", "scheduler",
                           "notification-handler", "auth-handler"}
    assert health["api-processor"]["invocations"] > 20
    assert results["02-metrics"]["percentile_source"] == ["logs"]
    cold = {row["function"]: row for row in results["03-cold-starts"]["cold_starts"]}
    assert cold["api-processor"]["cold_starts"] >= 1
    assert results["04-cost"]["cost_monthly_usd"] > 0
    assert "model only" in results["04-cost"]["cost_source"]
    assert results["05-tuning"]["tuned"]["file-processor"]["memory_mb"] in (128, 256, 512, 1024, 1769, 3008)
    # no recommend row breaks its floor, and no timeout is lowered from fewer samples than its bound needs
    assert recommend.check_rows(results["05-tuning"]["recommendations"]) == []
    # the file processor's memory advice covers its worst accepted input: at least that probe's peak + 30%,
    # and the floor's reason names it (issue 20)
    worst = results["05-tuning"]["worst_case"]["floor_probes"]["file-processor"]
    memory = [r for r in results["05-tuning"]["recommendations"] if r["function"] == "file-processor"
              and r["kind"] == "memory"][0]
    assert worst["probe"] and f"worst-case input {worst['probe']}" in memory["floor"], (worst, memory)
    assert int(memory["recommended"]) >= worst["peak_mb"] * 1.3
    assert results["00-summary"]["headlines"]


def test_the_run_drives_pipeline_executions_to_both_ends_and_notifies_each_failure(local_run):
    # GIVEN the run's traffic (its first upload a good file, its second one the data step fails on)
    results = json.loads((local_run["folder"] / "summary.json").read_text())["results"]
    flow = results["02-metrics"]["pipeline"]
    # THEN dataPipeline ran in moto's executor: at least one execution succeeded and one failed
    assert flow["succeeded"] >= 1 and flow["failed"] >= 1, flow
    assert flow["headline"] in results["00-summary"]["headlines"]
    # AND the runbook shows the failed step with its error, and that its failure notification was published
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (local_run["folder"] / "runbook.html").read_text()))
    assert re.search(r"ProcessData ValidationError (\d+) \1 ", text), "no notified ProcessData failure in the runbook"


def test_run_folder_layout_and_latest_link(local_run):
    folder = local_run["folder"]
    for name in notebooks.RUN_ORDER:
        assert (folder / f"{name}.ipynb").is_file()
    assert (folder / "runbook.html").is_file() and (folder / "summary.json").is_file()
    assert (folder.parent / "latest").resolve() == folder.resolve()
    phases = json.loads((folder / "summary.json").read_text())["phases_s"]
    assert {"local start", "traffic", "export"} <= set(phases)


def test_progress_is_shown(local_run):
    stderr = local_run["stderr"]
    assert "[1/6] 01-deploy" in stderr and "[6/6] 00-summary ok" in stderr
    assert "local traffic" in stderr


@pytest.mark.skipif(browser.chromium() is None, reason="chromium not installed (make test installs it)")
def test_runbook_in_headless_chromium(local_run, tmp_path):
    page = local_run["folder"] / "runbook.html"
    dom = browser.dom(page)
    body = re.sub(r"<(style|script)[^>]*>.*?</\1>", "", dom, flags=re.S)   # what the reader sees
    for name in notebooks.RUNBOOK_ORDER:
        assert f'id="{name}"' in dom, name
    for heading in ("Contents", "Parameters", "Headlines", "Health per function", "Preview", "Alarms in ALARM",
                    "Rate and INIT duration per function", "By charge type", "Recommendations", "The params patch"):
        assert heading in dom, heading
    # No code cells and no error banners.
    assert "import scrapbook" not in body and "open_session(" not in body
    assert not re.search(r'class="[^"]*jp-InputArea-editor', body)
    assert not re.search(r'class="[^"]*jp-InputPrompt', body)
    assert "Traceback" not in body and "An Exception was encountered" not in body
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in body
    assert dom.count("data:image/png;base64") >= sum(CHARTS.values())
    shot = browser.screenshot(page, tmp_path / "runbook.png")
    assert shot.stat().st_size > 50_000
    # Every table fits a 1,400 px window: no scrolling inside a section, headers a person reads
    assert browser.wide_tables(page, 1400) == []
    assert "init_p50_ms" not in body and "INIT p50 (ms)" in body
    assert "of at most" not in body          # power tuning's progress lines stay in kernels.log
    assert ".partial" not in body


def test_no_secret_reaches_any_output_file(local_run):
    """The planted-secret test, through `make run`'s own path (docs/security.md)."""
    folder, secrets = local_run["folder"], local_run["secrets"]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) >= 8
    # No decoder (HTML, JSON, URL, base64, base64url, hex) shows 12 characters of any secret, in any file
    for path in files:
        found = leaked(path.read_bytes().decode("utf-8", errors="replace"), secrets)
        assert found == {}, f"{path.name} shows {sorted(v for runs in found.values() for v in runs)[:3]}"
    # nor in the progress lines
    assert leaked(local_run["stderr"], secrets) == {}
    # The planted forms did reach every notebook, the runbook and the kernels' log, and were redacted there
    for name in notebooks.RUN_ORDER:
        assert (folder / f"{name}.ipynb").read_text().count("[redacted]") >= 10, name
    assert (folder / "runbook.html").read_text().count("[redacted]") >= 60
    assert "kernel stderr: [redacted]" in (folder / "kernels.log").read_text()
    redaction = json.loads((folder / "summary.json").read_text())["redaction"]
    assert redaction["files_removed"] == [] and "runbook.html" in redaction["files_changed"]


def test_the_self_started_environment_is_stopped_with_nothing_left(local_run):
    box = local_run["box"]
    assert "local environment: starting" in local_run["stderr"] and "local environment: stopped" in local_run["stderr"]
    assert not (box.state_dir / "state.json").exists()
    assert box.wait_until_none_left() == []

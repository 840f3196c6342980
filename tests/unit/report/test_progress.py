"""Progress of long cells: plain lines outside JupyterLab, a bar inside."""
from __future__ import annotations

import io

from workbook.report import progress


def test_plain_lines_outside_lab_are_throttled_and_end_with_the_total():
    # GIVEN the tracker a report (interactive=False) gets, printing at most one line a minute
    out = io.StringIO()
    bar = progress.tracker("Power tuning file-processor", interactive=False, every_s=60, stream=out)
    # WHEN 40 invocations report, then the work finishes under its budget
    for done in range(1, 41):
        bar(done, 63, 1024)
    bar.finish(40)
    # THEN one line at the start and one at the end, with the figures a reader needs
    lines = out.getvalue().splitlines()
    assert lines == ["Power tuning file-processor: 1 of at most 63 invocations (now at 1024 MB)",
                     "Power tuning file-processor: done, 40 invocations"]


def test_the_widget_bar_follows_the_invocations():
    bar = progress.WidgetProgress("Power tuning file-processor")
    bar(10, 63, 2048)
    assert (bar.bar.value, bar.bar.max) == (10, 63) and "2,048 MB" in bar.label.value
    bar.finish(40)
    assert bar.bar.bar_style == "success" and "40 invocations" in bar.label.value


def test_inside_a_run_progress_lines_go_to_the_runs_log_not_the_notebook(tmp_path, monkeypatch, capsys):
    # GIVEN a kernel of `workbook run`, which names the run's kernels.log
    log = tmp_path / "kernels.log"
    log.write_text("kernel start-up chatter\n")
    monkeypatch.setenv(progress.LOG_ENV, str(log))
    # WHEN power tuning reports progress (as a scheduled report's cell does)
    bar = progress.tracker("Power tuning file-processor", interactive=False, every_s=60)
    bar(1, 56, 3008)
    bar.finish(12)
    # THEN the lines are appended to the log, and nothing reaches the cell's output (so nor the runbook)
    assert log.read_text().splitlines() == [
        "kernel start-up chatter", "Power tuning file-processor: 1 of at most 56 invocations (now at 3008 MB)",
        "Power tuning file-processor: done, 12 invocations"]
    assert capsys.readouterr().out == ""


def test_outside_a_run_progress_lines_go_to_stdout(monkeypatch, capsys):
    monkeypatch.delenv(progress.LOG_ENV, raising=False)
    bar = progress.tracker("Power tuning api-processor", interactive=False)
    bar(1, 10, 128)
    assert capsys.readouterr().out == "Power tuning api-processor: 1 of at most 10 invocations (now at 128 MB)\n"

"""workbook.report: ``workbook run`` with small notebooks, its checks, its endings, schedules.

The slow tests here run real kernels through Papermill on ``--env dev`` with small stand-in
notebooks (no AWS: the stack's secrets are not read); the local environment's runs, signals and
kills are in tests/notebooks/test_run_faults.py.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from workbook import cli
from workbook.deploy.diff import previous_run_file
from workbook.report import folders, ownership, schedule
from workbook.report import notebooks as book
from workbook.report import run as report

SECRET = "pl&nted <pass> \"phrase\" 0042"


def make_notebook(path: Path, body: list[str], parameters: str = "env = 'dev'\nsince = '1h'") -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {path.stem}\n\nA short runbook section."))
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in body]
    nbformat.write(nb, str(path))


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    chart = ("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3])\n"
             "ax.set_title('Invocations'); ax.set_ylabel('count')\nplt.show()")
    for name in book.RUN_ORDER:
        make_notebook(folder / f"{name}.ipynb", [
            "import scrapbook as sb\nsb.glue('notebook', %r)\nsb.glue('env', env)" % name,
            chart,
        ])
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No AWS here: the stack's secrets are not read; outputs and state stay in tmp_path."""
    monkeypatch.setattr(report._Run, "_learn_stack_secrets", lambda self: None)
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(folders.OUTPUTS_ENV, raising=False)


def test_parse_since():
    assert book.parse_since("90m") == 5400
    assert book.parse_since("24h") == 86400
    assert book.parse_since("7d") == 604800
    for bad in ("", "24", "0h", "1w", "-1h", "h"):
        with pytest.raises(ValueError, match="--since"):
            book.parse_since(bad)


def test_bad_arguments_fail_before_anything_is_created(tmp_path, notebooks, monkeypatch):
    # GIVEN no kernel may start
    started = []
    monkeypatch.setattr(report, "execute", lambda *a, **k: started.append(a))
    out = tmp_path / "out"
    # WHEN each argument is wrong THEN a clear error, and no outputs folder at all
    with pytest.raises(Exception, match="params/qa.yaml"):
        report.run("qa", outputs_dir=out, notebooks_dir=notebooks)
    with pytest.raises(ValueError, match="unknown notebook"):
        report.run("dev", only=["06-nope"], outputs_dir=out, notebooks_dir=notebooks)
    with pytest.raises(ValueError, match="--since"):
        report.run("dev", since="yesterday", outputs_dir=out, notebooks_dir=notebooks)
    with pytest.raises(ValueError, match="--traffic-seconds -5: expected 0 or more seconds"):
        report.run("dev", traffic_s=-5, outputs_dir=out, notebooks_dir=notebooks)
    with pytest.raises(ValueError, match="--function 'nope'"):
        report.run("dev", functions=["nope"], outputs_dir=out, notebooks_dir=notebooks)
    assert started == [] and not out.exists()


@pytest.mark.parametrize("argv", [["--since", "garbage"], ["--traffic-seconds", "-1"], ["--traffic-seconds", "nan"],
                                  ["--only", "06-nope"], ["--function", "nope"]])
def test_cli_bad_input_exits_2_and_leaves_latest_alone(tmp_path, monkeypatch, capsys, argv):
    # GIVEN a finished earlier run that `latest` points at
    monkeypatch.setenv(folders.OUTPUTS_ENV, str(tmp_path / "out"))
    earlier = tmp_path / "out" / "local" / "20260101T000000Z"
    earlier.mkdir(parents=True)
    folders.point_latest(earlier)
    # WHEN the command gets a bad argument (argparse's own checks exit through SystemExit)
    try:
        code = cli.main(["run", "--env", "local", *argv])
    except SystemExit as exc:
        code = exc.code
    # THEN exit 2, one line naming the argument, no traceback, nothing new
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out" / "local").iterdir()) == ["20260101T000000Z", "latest"]
    assert (tmp_path / "out" / "local" / "latest").resolve() == earlier


def test_cli_refuses_an_outputs_path_with_a_file_in_the_way(tmp_path, monkeypatch, capsys):
    (tmp_path / "out").write_text("a file")
    monkeypatch.setenv(folders.OUTPUTS_ENV, str(tmp_path / "out"))
    assert cli.main(["run", "--env", "dev"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'out'} is a file, not a folder" in err


def test_cli_refuses_a_nearly_full_disk(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(folders.OUTPUTS_ENV, str(tmp_path / "out"))
    monkeypatch.setattr(folders, "free_bytes", lambda path: 3 * folders.MB)
    assert cli.main(["run", "--env", "dev"]) == 1
    assert "3.0 MB free" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_cli_second_run_on_the_local_environment_is_refused(tmp_path, monkeypatch, capsys):
    # GIVEN a run holding the local environment (its lock), and a finished run `latest` points at
    monkeypatch.setenv(folders.OUTPUTS_ENV, str(tmp_path / "out"))
    earlier = tmp_path / "out" / "local" / "20260101T000000Z"
    earlier.mkdir(parents=True)
    folders.point_latest(earlier)
    holder = ownership.RunLock().acquire(str(tmp_path / "out" / "local" / "20260102T000000Z.partial"))
    try:
        # WHEN a second run starts
        code = cli.main(["run", "--env", "local", "--traffic-seconds", "0"])
    finally:
        holder.release()
    # THEN exit 1, one line naming the holder, no traceback, no folder, latest untouched
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err and captured.out == ""
    assert "another `workbook run` is using the local environment" in captured.err
    assert sorted(p.name for p in (tmp_path / "out" / "local").iterdir()) == ["20260101T000000Z", "latest"]


@pytest.mark.slow   # real kernels through Papermill
def test_full_run_writes_notebooks_runbook_and_summary(tmp_path, notebooks):
    tuning = notebooks / "05-tuning.ipynb"     # a cell reporting progress as power tuning does
    cells = [c.source for c in nbformat.read(str(tuning), as_version=4).cells if c.cell_type == "code"][1:]
    make_notebook(tuning, [*cells, "from workbook.report import progress\nbar = progress.tracker("
                           "'Power tuning file-processor', False)\nbar(1, 56, 3008)\nbar.finish(12)"])
    result = report.run("dev", since="2h", outputs_dir=tmp_path / "out", notebooks_dir=notebooks,
                        progress=lambda m: None)
    folder = result.folder
    assert result.ok and folder.name == folder.name.removesuffix(".partial")
    assert (tmp_path / "out" / "dev" / "latest").resolve() == folder.resolve()
    for name in book.RUN_ORDER:
        executed = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
        assert executed.metadata["papermill"]["parameters"]["env"] == "dev"
        outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["ok"] is True and summary["status"] == "ok" and summary["runbook"] == "runbook.html"
    assert summary["results"]["02-metrics"]["notebook"] == "02-metrics"
    assert summary["parameters"]["since_s"] == 7200
    assert summary["run"] == folder.name and summary["parameters"]["run_folder"] == str(folder)
    html = (folder / "runbook.html").read_text()
    assert f"Run <code>{folder.name}</code>" in html and ".partial" not in html
    assert "Runbook" in html and "Contents" in html and 'id="00-summary"' in html
    assert "data:image/png;base64" in html and "This run" not in html
    assert "sb.glue" not in html   # no code cells
    assert html.index('id="00-summary"') < html.index('id="01-deploy"')
    assert not (folder / "watchdog.log").exists()
    # AND progress lines went to kernels.log, not into the notebook or the runbook
    assert "Power tuning file-processor: 1 of at most 56 invocations" in (folder / "kernels.log").read_text()
    assert "of at most 56" not in (folder / "05-tuning.ipynb").read_text() and "of at most 56" not in html


@pytest.mark.slow   # real kernels through Papermill
def test_failing_notebook_names_notebook_and_cell_and_keeps_partial_runbook(tmp_path, notebooks):
    make_notebook(notebooks / "03-cold-starts.ipynb", ["x = 1", "raise RuntimeError('no REPORT lines in range')"])
    with pytest.raises(report.RunError) as info:
        report.run("dev", outputs_dir=tmp_path / "out", notebooks_dir=notebooks, progress=lambda m: None)
    message = str(info.value)
    assert "03-cold-starts.ipynb" in message and "cell" in message and "no REPORT lines" in message
    folder = info.value.folder
    html = (folder / "runbook.html").read_text()
    assert "This run failed" in html and "no REPORT lines in range" in html
    summary = json.loads((folder / "summary.json").read_text())
    statuses = {n["name"]: n["status"] for n in summary["notebooks"]}
    assert statuses["03-cold-starts"] == "failed" and statuses["04-cost"] == "skipped"
    assert summary["status"] == "failed"
    # A failed run that ran to its end, with a runbook saying where: `latest` points at it.
    assert (folder.parent / "latest").resolve() == folder.resolve()


@pytest.mark.slow   # real kernels through Papermill
def test_a_dead_kernel_fails_the_notebook_and_the_run_ends_cleanly(tmp_path, notebooks):
    # GIVEN a notebook whose kernel dies (SIGKILL from inside)
    make_notebook(notebooks / "02-metrics.ipynb", ["print('before')", "import os, signal\nos.kill(os.getpid(), 9)"])
    # WHEN the run reaches it
    with pytest.raises(report.RunError, match="the kernel died") as info:
        report.run("dev", only=["01-deploy", "02-metrics", "04-cost"], outputs_dir=tmp_path / "out",
                   notebooks_dir=notebooks, progress=lambda m: None)
    # THEN the run is failed, with its summary and a runbook that says so; later notebooks skipped
    summary = json.loads((info.value.folder / "summary.json").read_text())
    assert summary["status"] == "failed" and "kernel died" in summary["reason"]
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "failed", "skipped"]
    assert "This run failed" in (info.value.folder / "runbook.html").read_text()


@pytest.mark.slow   # real kernels through Papermill
def test_an_export_failure_keeps_notebooks_redacted_and_latest_unmoved(tmp_path, notebooks, monkeypatch):
    # GIVEN a finished run that `latest` points at, a notebook printing a secret, and an export that fails
    monkeypatch.setenv("LWB_PULUMI_PASS", SECRET)
    earlier = tmp_path / "out" / "dev" / "20260101T000000Z"
    earlier.mkdir(parents=True)
    folders.point_latest(earlier)
    make_notebook(notebooks / "02-metrics.ipynb", ["import os\nprint(os.environ['LWB_PULUMI_PASS'])"])

    def broken(folder, result, name=None):
        (folder / "runbook.html").write_text("<html>half a page")
        raise RuntimeError("template missing")

    monkeypatch.setattr("workbook.report.finish.export_runbook", broken)
    # WHEN the run ends
    with pytest.raises(report.RunError, match="the runbook could not be exported: RuntimeError: template missing"):
        report.run("dev", only=["02-metrics"], outputs_dir=tmp_path / "out", notebooks_dir=notebooks,
                   progress=lambda m: None)
    # THEN the folder is kept as failed, no half page, nothing unredacted; latest stays
    run_folder = next(p for p in (tmp_path / "out" / "dev").iterdir() if p.name not in ("latest", earlier.name))
    assert json.loads((run_folder / "summary.json").read_text())["status"] == "failed"
    assert not (run_folder / "runbook.html").exists()
    assert all(SECRET not in p.read_text() for p in run_folder.iterdir())
    assert (tmp_path / "out" / "dev" / "latest").resolve() == earlier


@pytest.mark.slow   # real kernels through Papermill
def test_a_secret_in_an_error_reaches_no_progress_line_error_or_log(tmp_path, notebooks, monkeypatch, capsys):
    # GIVEN a notebook that fails with a secret in its message, and a scheduled-style --log
    monkeypatch.setenv("LWB_PULUMI_PASS", SECRET)
    monkeypatch.setenv(folders.OUTPUTS_ENV, str(tmp_path / "out"))
    monkeypatch.setattr(report, "NOTEBOOKS_DIR", notebooks)
    make_notebook(notebooks / "02-metrics.ipynb", ["import os\nraise RuntimeError('bad ' + os.environ['LWB_PULUMI_PASS'])"])
    log = tmp_path / "out" / "dev" / "schedule.log"
    # WHEN the command runs
    code = cli.main(["run", "--env", "dev", "--only", "02-metrics", "--log", str(log)])
    # THEN it fails naming the notebook, and neither the terminal, the log nor any file holds the secret
    captured = capsys.readouterr()
    assert code == 1 and "02-metrics.ipynb failed at cell" in captured.err and "bad [redacted]" in captured.err
    assert SECRET not in captured.err + captured.out
    text = log.read_text()
    assert "02-metrics FAILED" in text and "bad [redacted]" in text and SECRET not in text
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


@pytest.mark.slow   # real kernels through Papermill
def test_only_runs_the_named_notebooks(tmp_path, notebooks):
    result = report.run("dev", only=["02-metrics"], outputs_dir=tmp_path, notebooks_dir=notebooks,
                        progress=lambda m: None)
    assert [n.name for n in result.notebooks] == ["02-metrics"]


def test_schedule_lines_log_through_the_run_itself():
    lines = schedule.schedule_lines("prod", "0 6 * * *")
    assert lines["crontab"].startswith("0 6 * * * cd ")
    assert "workbook run --env prod --log " in lines["crontab"] and "schedule.log" in lines["crontab"]
    assert ">>" not in lines["crontab"] and lines["crontab"].count(">/dev/null 2>&1") == 1
    assert "OnCalendar=*-*-* 06:00:00" in lines["timer"]
    assert "ExecStart=" in lines["service"] and "--log " in lines["service"] and "KillMode=mixed" in lines["service"]


def test_schedule_follows_the_outputs_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(folders.OUTPUTS_ENV, str(tmp_path / "shared"))
    lines = schedule.schedule_lines("prod", "0 6 * * *")
    assert f"{folders.OUTPUTS_ENV}={tmp_path / 'shared'} " in lines["crontab"]
    assert f"--log {tmp_path / 'shared' / 'prod' / 'schedule.log'}" in lines["crontab"]


@pytest.mark.parametrize("cron", ["0 6 * *", "every day", "0 6 * * * *"])
def test_schedule_rejects_bad_cron(cron):
    with pytest.raises(ValueError, match="five crontab fields"):
        schedule.schedule_lines("prod", cron)


def test_schedule_cli_unknown_env(capsys):
    assert cli.main(["schedule", "--env", "qa", "--cron", "0 6 * * *"]) == 2
    assert "params/qa.yaml" in capsys.readouterr().err


def test_previous_run_file_ignores_partial_folders(tmp_path):
    base = tmp_path / "dev"
    first = folders.publish(folders.new_partial_folder(base, datetime(2026, 1, 1, tzinfo=UTC)))
    second = folders.publish(folders.new_partial_folder(base, datetime(2026, 1, 2, tzinfo=UTC)))
    third = folders.new_partial_folder(base, datetime(2026, 1, 3, tzinfo=UTC))    # the run in progress
    (first / "deploy.json").write_text("{}")
    assert previous_run_file(third, "deploy.json") == first / "deploy.json"
    assert previous_run_file(first, "deploy.json") is None
    assert previous_run_file(None, "deploy.json") is None
    assert second.exists()


def test_stack_secret_names_come_from_the_plan():
    from infra import config

    assert report.stack_secret_names(config.load("dev")) == ["lwb-dev-d01-api-keys", "lwb-dev-d01-db", "lwb-dev-d01-jwt"]

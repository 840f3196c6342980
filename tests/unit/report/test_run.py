"""workbook.report: run folders, Papermill execution, the runbook, redaction and schedules."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from workbook.deploy.diff import previous_run_file
from workbook.report import folders, redact, schedule
from workbook.report import notebooks as book
from workbook.report import run as report


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


def test_parse_since():
    assert book.parse_since("90m") == 5400
    assert book.parse_since("24h") == 86400
    assert book.parse_since("7d") == 604800
    for bad in ("", "24", "0h", "1w", "-1h", "h"):
        with pytest.raises(ValueError, match="--since"):
            book.parse_since(bad)


def test_run_folder_and_latest_link(tmp_path):
    first = folders.new_run_folder("dev", tmp_path, datetime(2026, 1, 1, tzinfo=UTC))
    second = folders.new_run_folder("dev", tmp_path, datetime(2026, 1, 1, tzinfo=UTC))
    assert first.name == "20260101T000000Z" and second.name == "20260101T000000Z-2"
    assert (tmp_path / "dev" / "latest").resolve() == second.resolve()


def test_prune_keeps_the_newest(tmp_path):
    for day in range(1, 6):
        folders.new_run_folder("dev", tmp_path, datetime(2026, 1, day, tzinfo=UTC))
    removed = folders.prune_runs("dev", 2, tmp_path)
    assert len(removed) == 3
    left = sorted(p.name for p in (tmp_path / "dev").iterdir() if not p.is_symlink())
    assert left == ["20260104T000000Z", "20260105T000000Z"]


@pytest.mark.slow   # real kernels through Papermill
def test_full_run_writes_notebooks_runbook_and_summary(tmp_path, notebooks):
    result = report.run("dev", since="2h", outputs_dir=tmp_path / "out", notebooks_dir=notebooks,
                        progress=lambda m: None)
    folder = result.folder
    assert result.ok
    for name in book.RUN_ORDER:
        executed = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
        assert executed.metadata["papermill"]["parameters"]["env"] == "dev"
        outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["results"]["02-metrics"]["notebook"] == "02-metrics"
    assert summary["parameters"]["since_s"] == 7200
    html = (folder / "runbook.html").read_text()
    assert "Runbook" in html and "Contents" in html and 'id="00-summary"' in html
    assert "data:image/png;base64" in html
    assert "sb.glue" not in html   # no code cells
    assert html.index('id="00-summary"') < html.index('id="01-deploy"')


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


def test_bad_params_fail_before_any_kernel(tmp_path, notebooks, monkeypatch):
    started = []
    monkeypatch.setattr(report, "execute", lambda *a, **k: started.append(a))
    with pytest.raises(Exception, match="params/qa.yaml"):
        report.run("qa", outputs_dir=tmp_path, notebooks_dir=notebooks)
    with pytest.raises(ValueError, match="unknown notebook"):
        report.run("dev", only=["06-nope"], outputs_dir=tmp_path, notebooks_dir=notebooks)
    with pytest.raises(ValueError, match="--since"):
        report.run("dev", since="yesterday", outputs_dir=tmp_path, notebooks_dir=notebooks)
    assert started == []


@pytest.mark.slow   # real kernels through Papermill
def test_only_runs_the_named_notebooks(tmp_path, notebooks):
    result = report.run("dev", only=["02-metrics"], outputs_dir=tmp_path, notebooks_dir=notebooks,
                        progress=lambda m: None)
    assert [n.name for n in result.notebooks] == ["02-metrics"]


def test_redaction_removes_planted_secrets(tmp_path):
    (tmp_path / "a.ipynb").write_text(json.dumps({"text": "token=s3cr3t-Value-123 and \"quote\""}))
    (tmp_path / "b.html").write_text("<p>s3cr3t-Value-123</p>")
    changed = redact.redact_folder(tmp_path, {"s3cr3t-Value-123"})
    assert len(changed) == 2
    for path in tmp_path.iterdir():
        assert "s3cr3t-Value-123" not in path.read_text()


def test_known_secrets_include_secret_looking_env_vars(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct-horse-battery")
    assert "correct-horse-battery" in redact.known_secrets()


def test_schedule_lines():
    lines = schedule.schedule_lines("prod", "0 6 * * *")
    assert lines["crontab"].startswith("0 6 * * * cd ")
    assert "workbook run --env prod" in lines["crontab"]
    assert "OnCalendar=*-*-* 6:0:00" in lines["timer"]
    assert "ExecStart=" in lines["service"]


@pytest.mark.parametrize("cron", ["0 6 * *", "every day", "0 6 * * * *"])
def test_schedule_rejects_bad_cron(cron):
    with pytest.raises(ValueError, match="five crontab fields"):
        schedule.schedule_lines("prod", cron)


def test_schedule_cli_unknown_env(capsys):
    from workbook import cli

    assert cli.main(["schedule", "--env", "qa", "--cron", "0 6 * * *"]) == 2
    assert "params/qa.yaml" in capsys.readouterr().err


def test_previous_run_file(tmp_path):
    first = folders.new_run_folder("dev", tmp_path, datetime(2026, 1, 1, tzinfo=UTC))
    second = folders.new_run_folder("dev", tmp_path, datetime(2026, 1, 2, tzinfo=UTC))
    third = folders.new_run_folder("dev", tmp_path, datetime(2026, 1, 3, tzinfo=UTC))
    (first / "deploy.json").write_text("{}")
    assert previous_run_file(third, "deploy.json") == first / "deploy.json"
    assert previous_run_file(first, "deploy.json") is None
    assert previous_run_file(None, "deploy.json") is None
    assert second.exists()

"""Runs that end cleanly whatever ends them: interrupts in each notebook and the export, a full disk,
a read-only or nearly full outputs folder. Small stand-in notebooks on ``--env dev`` (real kernels,
real signals, real file systems: tmpfs mounts), run in a child process through the CLI.

After each: exit code as documented, no process of the test left, the decoys alive, ``latest``
valid and unmoved by anything but a run that ran to its end, and no planted secret in any file.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.faults import Sandbox, folders_of, latest_is_valid, seed_latest
from workbook.report import notebooks as book

SECRET = 'pl&nted <pass> "phrase" 5151-fault'


def make_notebook(path: Path, body: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {path.stem}"))
    cell = nbformat.v4.new_code_cell("env = 'dev'\nrun_folder = None")
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in body]
    nbformat.write(nb, str(path))


@pytest.fixture
def box(tmp_path, decoys):
    sandbox = Sandbox(tmp_path)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in book.RUN_ORDER:
        make_notebook(notebooks / f"{name}.ipynb", [
            "import os\nprint('the passphrase is', os.environ['LWB_PULUMI_PASS'])",
            f"import scrapbook as sb\nsb.glue('notebook', {name!r})",
        ])
    sandbox.notebooks = notebooks
    yield sandbox
    left = sandbox.wait_until_none_left()
    assert left == [], f"processes of the run are left: {left}"
    assert decoys.all_alive()
    assert latest_is_valid(sandbox.outputs / "dev")
    for path in sandbox.root.rglob("*"):
        if path.is_file() and "notebooks" not in path.parts:
            assert SECRET not in path.read_text(errors="replace"), f"{path} holds the planted secret"


def _drive(box: Sandbox, fault: str | None, only: list[str]) -> object:
    args = ["--offline", "--notebooks", str(box.notebooks)] + (["--fault", fault] if fault else [])
    return box.run(args, ["run", "--env", "dev", "--only", *only], LWB_PULUMI_PASS=SECRET)


@pytest.mark.parametrize("name", book.RUN_ORDER)
def test_sigint_in_each_notebook_keeps_a_marked_partial_run(box, name):
    # GIVEN a finished earlier run, and a notebook whose kernel the run is waiting on
    earlier = seed_latest(box.outputs / "dev")
    make_notebook(box.notebooks / f"{name}.ipynb", [
        "import os\nprint('the passphrase is', os.environ['LWB_PULUMI_PASS'])",
        "import os, signal, time\nos.kill(os.getppid(), signal.SIGINT)\ntime.sleep(60)",
    ])
    # WHEN Ctrl-C reaches the run while that notebook runs
    outcome = _drive(box, None, [name])
    # THEN exit 130, one line that says so; the partial run is kept, marked, redacted; latest unmoved
    assert outcome.returncode == 130, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr, outcome.stderr[-8000:]
    assert f"interrupted by SIGINT during notebook {name}" in outcome.stderr
    folder = outcome.folder
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted" and len(summary["notebooks"]) == 1
    assert summary["notebooks"][0]["name"] == name and summary["notebooks"][0]["status"] == "interrupted"
    assert summary["notebooks"][0]["seconds"] > 0
    assert "This run was interrupted" in (folder / "runbook.html").read_text()
    assert "[redacted]" in (folder / f"{name}.ipynb").read_text()
    assert (box.outputs / "dev" / "latest").resolve() == earlier
    assert folders_of(box.outputs / "dev") == sorted([earlier.name, folder.name, "latest"])


def test_sigint_during_the_export_still_exports_a_marked_runbook(box):
    earlier = seed_latest(box.outputs / "dev")
    outcome = _drive(box, "export:INT", ["02-metrics", "04-cost"])
    assert outcome.returncode == 130, outcome.stderr[-3000:]
    assert "finishing cleanly first" in outcome.stderr
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "during the export" in summary["reason"]
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "ok"]
    assert "This run was interrupted" in (outcome.folder / "runbook.html").read_text()
    assert (box.outputs / "dev" / "latest").resolve() == earlier


def test_a_run_that_ends_well_moves_latest_and_prints_its_folder(box):
    seed_latest(box.outputs / "dev")
    outcome = _drive(box, None, ["02-metrics"])
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert (box.outputs / "dev" / "latest").resolve() == outcome.folder
    assert json.loads((outcome.folder / "summary.json").read_text())["status"] == "ok"


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root only); ``tmpfs(size, ro=False)`` returns its folder."""
    mounted = []

    def mount(size: str, read_only: bool = False) -> Path:
        folder = tmp_path / f"mnt{len(mounted)}"
        folder.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_disk_that_fills_mid_run_gives_one_line_and_leaves_no_secret(box, tmpfs):
    # GIVEN outputs on a 16 MB disk, and a notebook that fills it after printing the secret
    disk = tmpfs("16m")
    make_notebook(box.notebooks / "02-metrics.ipynb", [
        "import os\nprint('the passphrase is', os.environ['LWB_PULUMI_PASS'])",
        "import os\nwith open(os.path.join(os.environ['WORKBOOK_OUTPUTS_DIR'], 'filler'), 'wb') as f:\n"
        "    try:\n        while True:\n            f.write(b'x' * 65536)\n    except OSError:\n        pass",
        "print('after the disk filled ' * 1000)",
    ])
    # WHEN the run writes its notebooks, runbook and summary there
    outcome = box.run(["--offline", "--notebooks", str(box.notebooks)],
                      ["run", "--env", "dev", "--only", "02-metrics", "04-cost"],
                      LWB_PULUMI_PASS=SECRET, WORKBOOK_OUTPUTS_DIR=str(disk))
    # THEN exit 1 with one line naming the path, no traceback; nothing holds the secret; latest untouched
    assert outcome.returncode == 1, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr and "No space left on device" in outcome.stderr
    assert str(disk) in outcome.stderr.strip().splitlines()[-1]
    for path in disk.rglob("*"):
        if path.is_file() and path.name != "filler":
            assert SECRET not in path.read_text(errors="replace"), path
    assert latest_is_valid(disk / "dev")


def test_a_read_only_outputs_folder_is_refused_before_anything(box, tmpfs):
    disk = tmpfs("1m", read_only=True)
    outcome = box.run(["--offline", "--notebooks", str(box.notebooks)], ["run", "--env", "dev"],
                      WORKBOOK_OUTPUTS_DIR=str(disk / "outputs"))
    assert outcome.returncode == 1 and "Traceback" not in outcome.stderr
    assert outcome.stderr.strip().endswith(f"workbook: {disk} is on a read-only file system; set "
                                           "WORKBOOK_OUTPUTS_DIR to a writable folder")


def test_a_nearly_full_outputs_disk_is_refused_before_anything(box, tmpfs):
    disk = tmpfs("8m")
    outcome = box.run(["--offline", "--notebooks", str(box.notebooks)], ["run", "--env", "dev"],
                      WORKBOOK_OUTPUTS_DIR=str(disk))
    assert outcome.returncode == 1 and "Traceback" not in outcome.stderr
    assert "MB free; a run writes about 5 MB and needs at least 10 MB free" in outcome.stderr
    assert folders_of(disk) == []


def test_sigkill_of_the_run_is_finished_by_its_watchdog(box):
    # GIVEN a finished earlier run, and a notebook that prints the secret then kills the run
    earlier = seed_latest(box.outputs / "dev")
    make_notebook(box.notebooks / "02-metrics.ipynb", [
        "import os\nprint('the passphrase is', os.environ['LWB_PULUMI_PASS'])",
        "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(60)"])
    # WHEN the run is killed outright while the notebook runs (no finally of its own can run)
    outcome = _drive(box, None, ["02-metrics"])
    assert outcome.returncode == -9
    assert box.wait_until_none_left(timeout_s=120) == []
    # THEN its watchdog has ended the kernel, redacted and published the folder as interrupted
    folder = next(p for p in (box.outputs / "dev").iterdir() if p.name not in (earlier.name, "latest"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "killed with SIGKILL, or crashed" in summary["reason"]
    assert "[redacted]" in (folder / "02-metrics.ipynb").read_text()
    assert "This run was interrupted" in (folder / "runbook.html").read_text()
    assert (box.outputs / "dev" / "latest").resolve() == earlier

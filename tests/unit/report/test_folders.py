"""Run folders: where outputs go, the checks before a run, partial folders, ``latest`` and pruning."""
from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workbook.report import folders
from workbook.report.errors import OutputsError

pytestmark = pytest.mark.usefixtures("no_outputs_override")


@pytest.fixture
def no_outputs_override(monkeypatch):
    monkeypatch.delenv(folders.OUTPUTS_ENV, raising=False)


def finished(base: Path, day: int, status: str = "ok", uid: int | None = None) -> Path:
    """A run folder as a finished run leaves it."""
    folder = base / f"202601{day:02d}T000000Z"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"status": status}))
    (folder / "runbook.html").write_text("<html></html>")
    if uid is not None:
        os.chown(folder, uid, uid)
    return folder


def test_outputs_go_to_the_project_folder_holding_params(tmp_path, monkeypatch):
    # GIVEN a project folder with params/, and a shell in a folder below it
    (tmp_path / "params").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "lambda-workbook"\n')
    (tmp_path / "notebooks" / "drafts").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "notebooks" / "drafts")
    # THEN outputs go to the project's outputs/, and WORKBOOK_OUTPUTS_DIR or an argument win
    assert folders.outputs_root() == tmp_path / "outputs"
    monkeypatch.setenv(folders.OUTPUTS_ENV, str(tmp_path / "elsewhere"))
    assert folders.outputs_root() == tmp_path / "elsewhere"
    assert folders.outputs_root(tmp_path / "given") == tmp_path / "given"


def test_outside_a_project_outputs_go_beside_the_params_in_use(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from infra import config

    assert folders.outputs_root() == config.PARAMS_DIR.resolve().parent / "outputs"


def test_a_file_in_the_way_is_refused_and_named(tmp_path):
    (tmp_path / "outputs").write_text("not a folder")
    with pytest.raises(OutputsError, match=r"outputs is a file, not a folder.*WORKBOOK_OUTPUTS_DIR"):
        folders.check_outputs(tmp_path / "outputs" / "local")
    assert (tmp_path / "outputs").read_text() == "not a folder"


@pytest.mark.parametrize(("free_mb", "outcome"), [(5, "refused"), (50, "warned"), (500, "quiet")])
def test_free_space_is_checked_before_anything(tmp_path, monkeypatch, free_mb, outcome):
    # GIVEN an outputs folder on a disk with this much free space (the seam the CLI tests use too)
    monkeypatch.setattr(folders, "free_bytes", lambda path: free_mb * folders.MB)
    base = tmp_path / "outputs" / "dev"
    # WHEN checked THEN under 10 MB is refused, under 100 MB warned, and nothing is created
    if outcome == "refused":
        with pytest.raises(OutputsError, match=r"5\.0 MB free; a run writes about 5 MB and needs at least 10 MB"):
            folders.check_outputs(base)
    elif outcome == "warned":
        assert "only 50 MB free" in folders.check_outputs(base)
    else:
        assert folders.check_outputs(base) is None
    assert not (tmp_path / "outputs").exists()


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs (root alone can mount one; as root, permissions do not stop writes)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_read_only_outputs_folder_is_refused(read_only_dir):
    with pytest.raises(OutputsError, match="read-only file system"):
        folders.check_outputs(read_only_dir / "outputs" / "local")


def test_partial_folder_is_published_and_latest_moves_forward_only(tmp_path):
    # GIVEN two runs started in the same second
    base = tmp_path / "dev"
    first = folders.new_partial_folder(base, datetime(2026, 1, 2, tzinfo=UTC))
    second = folders.new_partial_folder(base, datetime(2026, 1, 2, tzinfo=UTC))
    assert (first.name, second.name) == ("20260102T000000Z.partial", "20260102T000000Z-2.partial")
    # WHEN the later one finishes first, then the earlier one
    newer = folders.publish(second)
    assert folders.point_latest(newer)
    older = folders.publish(first)
    # THEN latest stays on the newer run
    assert not folders.point_latest(older)
    assert (base / "latest").resolve() == newer.resolve()
    assert sorted(p.name for p in base.iterdir()) == ["20260102T000000Z", "20260102T000000Z-2", "latest"]


def test_run_status_reads_summaries_old_and_new(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "summary.json").write_text(json.dumps({"ok": False}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "summary.json").write_text(json.dumps({"status": "interrupted", "ok": False}))
    (tmp_path / "c").mkdir()
    assert [folders.run_status(tmp_path / n) for n in "abc"] == ["failed", "interrupted", None]


def test_prune_counts_and_deletes_only_this_users_finished_runs(tmp_path, monkeypatch):
    # GIVEN, oldest first: two finished runs, an interrupted one, a partial one, another user's
    # finished run, an empty folder, and two more finished runs
    base = tmp_path / "outputs" / "prod"
    old_ok, old_failed = finished(base, 1), finished(base, 2, "failed")
    interrupted = finished(base, 3, "interrupted")
    partial = base / "20260104T000000Z.partial"
    partial.mkdir()
    others = finished(base, 5, uid=os.getuid() + 4242)
    empty = base / "20260106T000000Z"
    empty.mkdir()
    newer, newest = finished(base, 7), finished(base, 8)
    folders.point_latest(newest)
    # WHEN pruning to two runs
    removed = folders.prune_runs("prod", 2, tmp_path / "outputs")
    # THEN only this user's older finished runs go; nothing else is counted or touched
    assert removed == [old_ok, old_failed]
    for kept in (interrupted, partial, others, empty, newer, newest):
        assert kept.is_dir(), kept.name

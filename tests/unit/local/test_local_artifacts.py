"""The sandbox's artifact cache: entries named by content hash, built aside and renamed, safe to race."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import zipfile
from pathlib import Path

import pytest

from workbook.local.sandbox import artifacts


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(artifacts.CACHE_ENV, str(folder))
    return folder


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_an_archive_is_unpacked_once_per_content_hash(cache, tmp_path):
    # GIVEN two zips with the same bytes at different paths, and one with other bytes
    first = _zip(tmp_path / "a.zip", {"app.py": b"x = 1\n", "python/lib/mod.py": b"y = 2\n"})
    copy = tmp_path / "copy.zip"
    copy.write_bytes(first.read_bytes())
    other = _zip(tmp_path / "b.zip", {"app.py": b"x = 3\n"})
    # WHEN each is unpacked
    unpacked = artifacts.unpacked(first)
    # THEN the folder is named by the sha256 of the zip's bytes, holds its files, and is shared by equal bytes
    assert unpacked.name == hashlib.sha256(first.read_bytes()).hexdigest()[:24]
    assert (unpacked / "python" / "lib" / "mod.py").read_bytes() == b"y = 2\n"
    assert artifacts.unpacked(copy) == unpacked
    assert artifacts.unpacked(other) != unpacked
    # and nothing is left beside them but the entries and the builders' lock
    assert sorted(p.name for p in (cache / "unpacked").iterdir()) == sorted([unpacked.name, artifacts.LOCK_NAME,
                                                                             artifacts.unpacked(other).name])


def test_an_entry_is_built_once_and_then_reused(tmp_path):
    calls = []
    target = tmp_path / "entry"

    def build(scratch: Path) -> None:
        calls.append(scratch)
        (scratch / "done").write_text("1")
    assert artifacts.materialize(target, build) == target
    assert artifacts.materialize(target, build) == target
    # built in a scratch folder beside the target, never in the target itself
    assert len(calls) == 1 and calls[0].parent == tmp_path and calls[0] != target
    assert (target / "done").read_text() == "1"


def test_a_failed_build_leaves_neither_entry_nor_scratch(tmp_path):
    target = tmp_path / "entry"

    def build(scratch: Path) -> None:
        (scratch / "half").write_text("written before the failure")
        raise artifacts.ArtifactError("the index is unreachable")
    with pytest.raises(artifacts.ArtifactError, match="unreachable"):
        artifacts.materialize(target, build)
    assert [p.name for p in tmp_path.iterdir()] == [artifacts.LOCK_NAME]


def _race(target: str, barrier, seen, built) -> None:
    """One builder process: every file written slowly, so that a reader of a half-built entry would see it."""
    def build(scratch: Path) -> None:
        built.put(os.getpid())
        for index in range(50):
            (scratch / f"file-{index:02d}").write_text(f"{index} from {os.getpid()}\n")
            os.sched_yield()
    barrier.wait(timeout=60)
    result = artifacts.materialize(Path(target), build)
    # What the builder gets back is whole, whoever built it
    seen.put(len(list(result.iterdir())))


def test_concurrent_builders_leave_one_whole_entry(tmp_path):
    # GIVEN eight processes asking for the same entry at the same moment
    target = tmp_path / "entry"
    context = multiprocessing.get_context("fork")
    barrier, seen, built = context.Barrier(8), context.Queue(), context.Queue()
    builders = [context.Process(target=_race, args=(str(target), barrier, seen, built)) for _ in range(8)]
    for builder in builders:
        builder.start()
    for builder in builders:
        builder.join(timeout=120)
    # THEN one of them built it (the others waited for it, not a download each), each saw a whole entry,
    # and no scratch folder is left (the lock file stays, empty)
    assert [builder.exitcode for builder in builders] == [0] * 8
    assert sorted(seen.get(timeout=5) for _ in builders) == [50] * 8
    assert built.qsize() == 1
    writers = {path.read_text().split(" from ")[1] for path in target.iterdir()}
    assert len(list(target.iterdir())) == 50 and len(writers) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == [artifacts.LOCK_NAME, "entry"]

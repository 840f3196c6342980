"""workbook.packaging: function zips with only their module, a layer zip cached by content hash."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest


@pytest.fixture
def packaging(tmp_path, monkeypatch):
    from infra import packaging

    monkeypatch.setattr(packaging, "BUILD_DIR", tmp_path / "build")
    return packaging


def test_each_function_zip_holds_only_its_module(packaging):
    from infra import specs

    for spec in specs.FUNCTIONS:
        path = packaging.function_archive_path(spec.key)
        assert zipfile.ZipFile(path).namelist() == [f"{spec.module}.py"]


def test_function_zip_is_cached_and_reproducible(packaging):
    first = packaging.function_archive_path("scheduler")
    mtime = first.stat().st_mtime_ns
    assert packaging.function_archive_path("scheduler") == first and first.stat().st_mtime_ns == mtime
    content = first.read_bytes()
    first.unlink()
    assert packaging.function_archive_path("scheduler").read_bytes() == content


def test_layer_zip_has_common_and_dependencies_without_runtime_provided_ones(packaging, monkeypatch):
    # GIVEN pip stubbed to "install" two packages, one of which the runtime provides
    calls = []

    def fake_pip(site_dir: Path, arch: str, python_version: str) -> None:
        calls.append(arch if python_version == packaging.LAMBDA_PYTHON_VERSION else (arch, python_version))
        for name in ("pg8000/__init__.py", "pg8000-1.31.dist-info/METADATA", "botocore/__init__.py",
                     "botocore-1.35.dist-info/METADATA", "bin/normalizer"):
            (site_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (site_dir / name).write_text("x")
    monkeypatch.setattr(packaging, "_pip_install", fake_pip)
    # WHEN the arm64 layer is built twice
    path = packaging.layer_archive_path("arm64")
    assert packaging.layer_archive_path("arm64") == path and calls == ["arm64"]
    # THEN it holds python/common and the dependency, not botocore nor bin/
    names = zipfile.ZipFile(path).namelist()
    assert "python/common/db.py" in names and "python/pg8000/__init__.py" in names
    assert not [n for n in names if n.startswith(("python/botocore", "python/bin"))]
    assert not [n for n in names if "__pycache__" in n]
    # AND a layer for another Python (the local sandbox's, where python3.12 is missing) is another archive,
    # installed for that version, beside the runtime's
    other = packaging.layer_archive_path("arm64", "3.11")
    assert other != path and path.is_file() and calls == ["arm64", ("arm64", "3.11")]
    assert packaging.layer_archive_path("arm64") == path and len(calls) == 2


def test_concurrent_zip_writers_leave_one_whole_zip(packaging, tmp_path):
    # GIVEN eight writers of the same archive at once (two environments and a deploy building one layer)
    import threading

    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 4096)
    target = tmp_path / "out" / "layer.zip"
    barrier = threading.Barrier(8)

    def write() -> None:
        barrier.wait()
        packaging._write_zip(target, [(f"python/f{index}.bin", source) for index in range(8)])
    writers = [threading.Thread(target=write) for _ in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    # THEN the zip is whole and valid, and no writer's scratch file is left
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None and len(archive.namelist()) == 8
    assert [path.name for path in target.parent.iterdir()] == ["layer.zip"]


def test_unknown_architecture_is_refused(packaging):
    with pytest.raises(packaging.PackagingError, match="x86_64, arm64"):
        packaging.layer_archive_path("sparc")


def test_report_lists_every_function(packaging):
    from infra import specs

    table = packaging.report(include_layer=False)
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| archive")]
    assert len(specs.FUNCTION_KEYS) == 6
    assert [row.split("|")[1].strip() for row in rows] == list(specs.FUNCTION_KEYS)


def test_a_rebuild_drops_the_stale_archive(packaging, monkeypatch):
    first = packaging.function_archive_path("auth-handler")
    monkeypatch.setattr(packaging, "function_hash", lambda key: "0123456789abcdef")
    second = packaging.function_archive_path("auth-handler")
    assert second != first and second.is_file() and not first.exists()


# -- the layer's lock ------------------------------------------------------------------------------
def test_the_lock_pins_every_requirement_with_hashes(packaging):
    # GIVEN handlers/requirements.lock as `make lock` wrote it
    packaging.check_lock()    # every requirement pinned, inside its range
    # THEN every pin carries at least one sha256 hash (pip's --require-hashes refuses anything less)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", packaging.LOCK.read_text().split("\n", 2)[-1].strip())
    pins = [block for block in blocks if "==" in block.splitlines()[0]]
    assert len(pins) == len(packaging.locked_pins()) > 0
    for block in pins:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]


@pytest.mark.parametrize(("requirement", "message"), [
    ("Pillow>=99", r"pins Pillow==[\d.]+, but requirements.txt asks for Pillow>=99; run `make lock`"),
    ("tomlkit>=0.12", r"does not pin tomlkit, but requirements.txt asks for tomlkit>=0.12; run `make lock`"),
])
def test_a_requirement_edited_since_the_lock_fails_the_build(packaging, tmp_path, requirement, message):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(packaging.REQUIREMENTS.read_text() + f"{requirement}  # added after `make lock`\n")
    with pytest.raises(packaging.PackagingError, match=message):
        packaging.check_lock(requirements)


def test_a_missing_lock_says_how_to_make_it(packaging, tmp_path):
    with pytest.raises(packaging.PackagingError, match=r"missing; run `make lock`"):
        packaging.check_lock(lock=tmp_path / "requirements.lock")


def test_the_lock_is_part_of_the_layers_hash(packaging, tmp_path, monkeypatch):
    before = packaging.layer_hash("x86_64")
    lock = tmp_path / "requirements.lock"
    lock.write_text(packaging.LOCK.read_text().replace("pg8000==", "pg8000===", 1))
    monkeypatch.setattr(packaging, "LOCK", lock)
    assert packaging.layer_hash("x86_64") != before

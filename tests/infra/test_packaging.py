"""workbook.packaging: function zips with only their module, a layer zip cached by content hash."""
from __future__ import annotations

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

    def fake_pip(site_dir: Path, arch: str) -> None:
        calls.append(arch)
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

"""The layer deploy builds holds exactly the locked wheels: pip installs handlers/requirements.lock with
``--require-hashes``, and two builds are byte-identical (needs the package index)."""
from __future__ import annotations

import re
import zipfile

import pytest

from infra import packaging

pytestmark = pytest.mark.timeout(900)


def test_the_x86_64_layer_is_the_lock_byte_for_byte(tmp_path, monkeypatch):
    # GIVEN two separate builds of the x86_64 layer, from the lock
    monkeypatch.setattr(packaging, "BUILD_DIR", tmp_path / "first")
    first = packaging.layer_archive_path("x86_64")
    monkeypatch.setattr(packaging, "BUILD_DIR", tmp_path / "second")
    second = packaging.layer_archive_path("x86_64")
    # THEN they are the same bytes
    assert first.read_bytes() == second.read_bytes()
    # and every distribution in it is the locked version (the runtime-provided ones left out)
    shipped = {}
    for name in zipfile.ZipFile(first).namelist():
        match = re.match(r"python/([^/]+)-([^-/]+)\.dist-info/METADATA$", name)
        if match:
            shipped[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    locked = {name: version for name, version in packaging.locked_pins().items()
              if name not in packaging.RUNTIME_PROVIDED}
    assert shipped == locked

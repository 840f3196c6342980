"""Deployment packages of the handlers: one small zip per function, one layer zip per architecture.

* A function's zip holds only its module, ``<module>.py`` at the root (``handlers/<module>.py``).
* The layer zip holds ``python/common`` (the shared layer) and the third-party dependencies
  pinned in ``handlers/requirements.lock`` (``make lock``: ``handlers/requirements.txt`` resolved by
  uv for CPython 3.12 on manylinux, every pin with its hashes), installed by pip with
  ``--require-hashes --no-deps`` for Lambda's platform (binary wheels only) and the function's
  architecture: the layer built on deploy day holds exactly the pinned files. boto3, botocore and
  s3transfer are left out: the Lambda Python runtime provides them, and botocore alone would triple
  the layer.

Archives are reproducible (sorted entries, fixed timestamps and modes) and cached under ``build/``
by a hash of everything that goes into them, so an unchanged tree never rebuilds and the
deploy sees an unchanged asset. ``sizes()`` reports each archive's bytes.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from infra import specs
from infra.project import project_dir

REPO_ROOT = project_dir()
HANDLERS_DIR = REPO_ROOT / "handlers"
COMMON_DIR = HANDLERS_DIR / "common"
REQUIREMENTS = HANDLERS_DIR / "requirements.txt"
LOCK = HANDLERS_DIR / "requirements.lock"
BUILD_DIR = REPO_ROOT / "build"

#: The Lambda runtime the layer is built for (pip's --python-version).
LAMBDA_PYTHON_VERSION = "3.12"
#: pip --platform per Lambda architecture.
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
#: Distributions the Lambda Python runtime already provides; never shipped in the layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
#: Bump to invalidate every cached archive (a change in how archives are built).
_FORMAT_VERSION = "1"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class PackagingError(RuntimeError):
    """A deployment package could not be built; the message names the step and the fix."""


@dataclass(frozen=True)
class ArchiveSize:
    """The size of one deployment archive."""

    name: str
    path: Path
    zipped_bytes: int
    unzipped_bytes: int


def _source_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".pyc", ".pyo"))


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


def function_module(key: str) -> Path:
    """``handlers/<module>.py`` of function ``key``."""
    path = HANDLERS_DIR / f"{specs.spec(key).module}.py"
    if not path.is_file():
        raise PackagingError(f"{path.relative_to(REPO_ROOT)}: missing handler module for function {key!r}")
    return path


def function_hash(key: str) -> str:
    """Content hash of function ``key``'s archive."""
    path = function_module(key)
    return _digest(_FORMAT_VERSION.encode(), path.name.encode(), path.read_bytes())


def layer_hash(arch: str, python_version: str = LAMBDA_PYTHON_VERSION) -> str:
    """Content hash of the layer archive for ``arch``: common/ files, requirements, platform, Python version."""
    _check_arch(arch)
    parts = [_FORMAT_VERSION.encode(), arch.encode(), python_version.encode(), REQUIREMENTS.read_bytes(),
             LOCK.read_bytes() if LOCK.is_file() else b""]
    for path in _source_files(COMMON_DIR):
        parts += [str(path.relative_to(COMMON_DIR)).encode(), path.read_bytes()]
    return _digest(*parts)


def _check_arch(arch: str) -> None:
    if arch not in PLATFORMS:
        raise PackagingError(f"unknown architecture {arch!r}; use one of {', '.join(PLATFORMS)}")


#: The empty file a build cache's folder is locked by (``exclusive``).
BUILD_LOCK_NAME = ".lock"


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """One builder at a time in ``folder`` (a build cache): the others wait here, then find the entry built.

    Local environments started at once, or a deploy beside them, would otherwise each run the same pip
    install. Advisory (``flock`` on ``.lock``); the builders' renames keep every entry whole either way.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / BUILD_LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_zip(target: Path, files: list[tuple[str, Path]]) -> None:
    """A reproducible zip of (archive name, source path) pairs, written atomically.

    Each writer has a scratch file of its own, renamed over the target: builders running side by side
    (two local environments, a deploy) never write into one file, and a reader sees a whole zip or none.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    partial = Path(scratch)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED,
                                                             compresslevel=9) as archive:
            for name, source in sorted(files):
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o755 if os.access(source, os.X_OK) and source.suffix == ".so" else 0o644) << 16
                archive.writestr(info, source.read_bytes())
        partial.chmod(0o644)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _drop_stale(target: Path, prefix: str) -> None:
    """Remove older builds of the same archive (same prefix, another content hash)."""
    for old in target.parent.glob(f"{prefix}*.zip"):
        if old != target and old.name[len(prefix):-len(".zip")].isalnum():
            old.unlink(missing_ok=True)


def function_archive_path(key: str) -> Path:
    """The zip of function ``key`` (only its module), built when missing; cached by content hash."""
    target = BUILD_DIR / "functions" / f"{key}-{function_hash(key)}.zip"
    if not target.is_file():
        module = function_module(key)
        _write_zip(target, [(module.name, module)])
        _drop_stale(target, f"{key}-")
    return target


def locked_pins(lock: Path | None = None) -> dict[str, str]:
    """``{normalized name: version}`` of the lock's pins."""
    lock = lock or LOCK
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            pins[_normalized(match.group(1))] = match.group(3)
    return pins


def check_lock(requirements: Path | None = None, lock: Path | None = None) -> None:
    """Fail when the lock is missing, or does not satisfy ``handlers/requirements.txt`` (edited since ``make lock``)."""
    requirements, lock = requirements or REQUIREMENTS, lock or LOCK
    where = lock.relative_to(REPO_ROOT) if lock.is_relative_to(REPO_ROOT) else lock
    if not lock.is_file():
        raise PackagingError(f"{where}: missing; run `make lock` to pin handlers/requirements.txt with hashes")
    pins = locked_pins(lock)
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        pinned = pins.get(_normalized(requirement.name))
        if pinned is None or (requirement.specifier and not requirement.specifier.contains(pinned, prereleases=True)):
            found = f"pins {requirement.name}=={pinned}" if pinned else f"does not pin {requirement.name}"
            raise PackagingError(f"{where} {found}, but {requirements.name} asks for {line}; "
                                 "run `make lock` to pin it again")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip_install(target_dir: Path, arch: str, python_version: str) -> None:
    check_lock()
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(target_dir), "-r", str(LOCK), "--require-hashes", "--no-deps",
               "--platform", PLATFORMS[arch],
               "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise PackagingError("pip install for the layer took longer than 15 minutes; check the package index") from None
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise PackagingError(f"pip could not install handlers/requirements.lock for {PLATFORMS[arch]}, "
                             f"Python {python_version} "
                             f"(needs the package index, binary wheels only):\n{tail}")


def _prune(site_dir: Path) -> None:
    """Drop what Lambda does not need: runtime-provided distributions, caches, bin/ scripts."""
    for entry in list(site_dir.iterdir()):
        name = entry.name.lower()
        distribution = name.split("-")[0].replace("_", "-") if name.endswith(".dist-info") else name
        if distribution in RUNTIME_PROVIDED or name == "bin":
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
    for cache in list(site_dir.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def layer_archive_path(arch: str, python_version: str = LAMBDA_PYTHON_VERSION) -> Path:
    """The layer zip for ``arch`` (``x86_64`` or ``arm64``), built when missing; cached by content hash.

    Deploy builds it for the stack's runtime (``LAMBDA_PYTHON_VERSION``); the local sandbox asks for the
    Python that runs its handlers, which is the same zip, byte for byte, where that Python is the runtime's.
    """
    _check_arch(arch)
    suffix = "" if python_version == LAMBDA_PYTHON_VERSION else f"py{python_version}-"
    prefix = f"common-{arch}-{suffix}"
    target = BUILD_DIR / "layers" / f"{prefix}{layer_hash(arch, python_version)}.zip"
    if target.is_file():
        return target
    with exclusive(target.parent):
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(prefix="lwb-layer-") as scratch:
            site_dir = Path(scratch) / "python"
            _pip_install(site_dir, arch, python_version)
            _prune(site_dir)
            shutil.copytree(COMMON_DIR, site_dir / "common", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            files = [(str(path.relative_to(scratch)), path) for path in _source_files(Path(scratch))]
            _write_zip(target, files)
        _drop_stale(target, prefix)
    return target


def archive_size(name: str, path: Path) -> ArchiveSize:
    """Zipped and unzipped bytes of one archive."""
    with zipfile.ZipFile(path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    return ArchiveSize(name=name, path=path, zipped_bytes=path.stat().st_size, unzipped_bytes=unzipped)


def sizes(arch: str = "x86_64", include_layer: bool = True) -> list[ArchiveSize]:
    """Each function's archive and (when ``include_layer``) the layer for ``arch``, built if needed."""
    found = [archive_size(key, function_archive_path(key)) for key in specs.FUNCTION_KEYS]
    if include_layer:
        found.append(archive_size(f"layer ({arch})", layer_archive_path(arch)))
    return found


def report(arch: str = "x86_64", include_layer: bool = True) -> str:
    """A markdown table of the archive sizes (KiB); a layer that cannot be built is reported as such."""
    lines = ["| archive | zipped KiB | unzipped KiB |", "|---|---:|---:|"]
    rows = sizes(arch, include_layer=False)
    layer_problem = None
    if include_layer:
        try:
            rows.append(archive_size(f"layer ({arch})", layer_archive_path(arch)))
        except PackagingError as error:
            layer_problem = str(error).splitlines()[0]
    for row in rows:
        lines.append(f"| {row.name} | {row.zipped_bytes / 1024:.1f} | {row.unzipped_bytes / 1024:.1f} |")
    if layer_problem:
        lines.append(f"| layer ({arch}) | not built: {layer_problem} | |")
    return "\n".join(lines)


__all__ = ["ArchiveSize", "PackagingError", "function_archive_path", "layer_archive_path", "report", "sizes"]

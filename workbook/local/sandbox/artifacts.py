"""What an execution environment runs: the deployed artifacts, unpacked, and the runtime's own packages.

On Lambda a function's path is its package (``/var/task``), then its layers (``/opt/python``), then
the runtime's own packages (``/var/runtime``: the runtime client and boto3), then the standard
library. The sandbox builds the same path from the same artifacts:

* the function's zip and the layer's zip, built by ``infra/packaging.py`` (the code deploy uses; the
  layer from ``handlers/requirements.lock`` with its hashes, for Lambda's platform and the Python
  that runs the handlers), unpacked once per content hash;
* the runtime's packages (``awslambdaric`` and boto3, pinned with hashes in ``runtime.lock`` beside
  this file), installed once per Python version;
* the interpreter: the stack's runtime (``python3.12``) wherever it is found on the machine, else
  the workbook's own Python, and ``describe()`` says so.

Everything is cached beside the zips, under ``build/sandbox/`` of the project (or
``$WORKBOOK_SANDBOX_CACHE_DIR``), each entry in a folder named by its content hash, built in a
scratch folder beside it and renamed into place: environments starting side by side never see a
half-built entry; one builds an entry while the others wait for it (``.lock`` in the folder).
"""
from __future__ import annotations

import functools
import hashlib
import os
import platform as host_platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra import packaging, specs
from workbook.local.errors import ArtifactError

#: The runtime's own packages (awslambdaric, boto3 and their dependencies), pinned with hashes: `make lock`.
RUNTIME_LOCK = Path(__file__).with_name("runtime.lock")
#: Choose the interpreter that runs the handlers (a path or a command); by default the stack's runtime.
HANDLER_PYTHON_ENV = "WORKBOOK_HANDLER_PYTHON"
CACHE_ENV = "WORKBOOK_SANDBOX_CACHE_DIR"
#: Lambda's architecture for this machine's processor: binary wheels must load here.
LOCAL_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    host_platform.machine().lower(), "x86_64")
_FORMAT_VERSION = "2"
LOCK_NAME = packaging.BUILD_LOCK_NAME


def cache_dir() -> Path:
    """Where unpacked artifacts and runtime packages are kept: ``build/sandbox/``, or ``$WORKBOOK_SANDBOX_CACHE_DIR``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else packaging.BUILD_DIR / "sandbox"


def materialize(target: Path, build: Callable[[Path], None]) -> Path:
    """``target`` (a folder), built by ``build(scratch)`` when missing: in a scratch folder beside it, then renamed.

    The rename is atomic, so a reader sees the whole folder or none; when another builder got there
    first, its folder is kept and this one dropped (both hold the same content: the name is its hash).
    """
    if target.is_dir():
        return target
    with packaging.exclusive(target.parent):
        if target.is_dir():
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            build(scratch)
            try:
                os.rename(scratch, target)
            except OSError:
                if not target.is_dir():
                    raise
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
    return target


def content_hash(path: Path) -> str:
    """The sha256 of a file's bytes (16 hex digits name a cache entry)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpacked(archive: Path) -> Path:
    """The folder holding ``archive``'s files, unpacked once per content hash."""
    def build(scratch: Path) -> None:
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(scratch)
    return materialize(cache_dir() / "unpacked" / content_hash(archive)[:24], build)


# -- the interpreter -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandlerPython:
    """Which Python runs the handlers locally, against the stack's Lambda runtime (never said silently)."""

    executable: str
    version: str                    # e.g. "3.12.1"
    stack_runtime: str              # e.g. "python3.12"
    stack_interpreter: str | None   # that runtime's interpreter on this machine, when one runs
    stack_interpreter_problem: str | None = None   # why a python3.X on PATH does not run
    chosen_by: str | None = None    # the variable that chose the interpreter, when one did

    @property
    def python_version(self) -> str:
        """``major.minor``: what the layer and the runtime's packages are installed for."""
        return ".".join(self.version.split(".")[:2])

    @property
    def matches(self) -> bool:
        return self.stack_runtime == f"python{self.python_version}"

    def describe(self) -> str:
        """One line for ``workbook local status``, the start's output and the notebooks' session line."""
        line = f"Python {self.version} ({self.executable})"
        if self.matches:
            return line + f", the stack's runtime ({self.stack_runtime})"
        if self.chosen_by:
            why = f"{self.chosen_by} chooses it"
        elif self.stack_interpreter_problem:
            why = f"{self.stack_runtime} on PATH does not run: {self.stack_interpreter_problem}"
        else:
            why = f"no {self.stack_runtime} on PATH or in pyenv"
        return line + (f", not the stack's runtime {self.stack_runtime} ({why}); the layer is built for "
                       f"Python {self.python_version}")


def _probe(python: str) -> tuple[str, str] | str:
    """``(sys.executable, version)`` of an interpreter, or why it does not run."""
    try:
        probe = subprocess.run([python, "-I", "-S", "-c", "import sys, platform; print(sys.executable); "
                                "print(platform.python_version())"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    lines = probe.stdout.split()
    if probe.returncode != 0 or len(lines) != 2:
        return ((probe.stderr or probe.stdout).strip().splitlines() or [f"exit status {probe.returncode}"])[0]
    return lines[0], lines[1]


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in folder.name.split("."))


def _stack_candidates(stack_runtime: str) -> list[str]:
    """Where the stack's interpreter may be: on PATH, then pyenv's installed versions of it (newest first)."""
    found = [path] if (path := shutil.which(stack_runtime)) else []
    version = stack_runtime.removeprefix("python")
    versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if versions.is_dir():
        found += [str(folder / "bin" / stack_runtime)
                  for folder in sorted(versions.glob(f"{version}.*"), key=_version_key, reverse=True)
                  if (folder / "bin" / stack_runtime).is_file()]
    return found


@functools.cache
def handler_python(stack_runtime: str = specs.RUNTIME, fallback: str = sys.executable) -> HandlerPython:
    """The interpreter the handlers run on: ``$WORKBOOK_HANDLER_PYTHON``, else the stack's runtime where it
    runs on this machine (on PATH, or installed by pyenv), else ``fallback`` (the workbook's own Python)."""
    wanted = stack_runtime.removeprefix("python")
    stack, problem = None, None
    for candidate in _stack_candidates(stack_runtime):
        probed = _probe(candidate)
        if isinstance(probed, str):
            problem = problem or probed
        elif ".".join(probed[1].split(".")[:2]) == wanted:
            stack = probed
            break
    chosen = os.environ.get(HANDLER_PYTHON_ENV)
    if chosen:
        probed = _probe(chosen)
        if isinstance(probed, str):
            raise ArtifactError(f"{HANDLER_PYTHON_ENV}={chosen} does not run: {probed}; "
                                f"unset it, or name a Python 3 interpreter")
        return HandlerPython(probed[0], probed[1], stack_runtime, stack and stack[0], problem, HANDLER_PYTHON_ENV)
    if stack:
        return HandlerPython(stack[0], stack[1], stack_runtime, stack[0], problem)
    probed = _probe(fallback)
    executable, version = probed if not isinstance(probed, str) else (fallback, "unknown")
    return HandlerPython(executable, version, stack_runtime, None, problem)


@functools.cache
def python_version_of(python: str) -> str:
    """``major.minor`` of an interpreter."""
    probed = _probe(python)
    if isinstance(probed, str):
        raise ArtifactError(f"the handlers' Python {python} does not run: {probed}")
    return ".".join(probed[1].split(".")[:2])


# -- the runtime's own packages ---------------------------------------------------------------------------
def runtime_site(python_version: str, python: str | None = None) -> Path:
    """``awslambdaric`` and boto3 (``runtime.lock``) installed for ``python_version`` on this machine's platform.

    ``python`` (of that version) compiles them to bytecode once, as Lambda's runtime ships them compiled; the
    environments themselves write none (``-B``).
    """
    lock = RUNTIME_LOCK.read_bytes()
    key = hashlib.sha256(b"\0".join([_FORMAT_VERSION.encode(), lock, python_version.encode(),
                                     packaging.PLATFORMS[LOCAL_ARCH].encode()])).hexdigest()[:24]

    def build(scratch: Path) -> None:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                   "--target", str(scratch), "-r", str(RUNTIME_LOCK), "--require-hashes", "--no-deps",
                   "--platform", packaging.PLATFORMS[LOCAL_ARCH], "--only-binary=:all:",
                   "--python-version", python_version, "--implementation", "cp"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise ArtifactError("installing the runtime's packages took longer than 15 minutes; "
                                "check the package index") from None
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise ArtifactError(f"pip could not install {RUNTIME_LOCK.name} (awslambdaric, boto3) for Python "
                                f"{python_version} (needs the package index, binary wheels only):\n{tail}")
        shutil.rmtree(scratch / "bin", ignore_errors=True)
        if python:
            subprocess.run([python, "-I", "-S", "-m", "compileall", "-q", "-j", "0", "-s", str(scratch), "-p",
                            str(target), str(scratch)], capture_output=True, timeout=900)
    target = cache_dir() / "runtime" / f"python{python_version}-{key}"
    return materialize(target, build)


# -- a function's path ---------------------------------------------------------------------------------------
def function_code_paths(key: str, python_version: str) -> tuple[str, str]:
    """Function ``key``'s package and the layer's ``python/``, as deploy builds them, unpacked: Lambda's
    ``/var/task`` and ``/opt/python``. The layer is built for ``python_version`` and this machine's platform."""
    try:
        function_zip = packaging.function_archive_path(key)
        layer_zip = packaging.layer_archive_path(LOCAL_ARCH, python_version)
    except packaging.PackagingError as exc:
        raise ArtifactError(str(exc)) from exc
    return str(unpacked(function_zip)), str(unpacked(layer_zip) / "python")


@dataclass(frozen=True)
class LocalRuntime:
    """The interpreter that runs the handlers and the runtime's own packages for it."""

    python: str
    paths: tuple[str, ...]
    python_version: str


@functools.cache
def local_runtime(python: str | None = None) -> LocalRuntime:
    """The handlers' interpreter (``python``, or ``handler_python()``) with its runtime packages installed."""
    executable = python or handler_python().executable
    version = python_version_of(executable)
    return LocalRuntime(executable, (str(runtime_site(version, executable)),), version)


__all__ = ["ArtifactError", "HandlerPython", "LocalRuntime", "cache_dir", "function_code_paths", "handler_python",
           "local_runtime", "materialize", "runtime_site", "unpacked"]

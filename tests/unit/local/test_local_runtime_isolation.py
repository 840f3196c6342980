"""Nothing the local environment starts as a script lets its own folder shadow the standard library.

An editable install hides the fault: setuptools' editable ``.pth`` imports ``types`` while the
interpreter starts, before a script's folder could shadow it. So the runtime is also started here
from a regular (non-editable) layout: the package copied into a bare venv's site-packages.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import workbook
from workbook.local import services
from workbook.local.sandbox import FunctionConfig, PlatformSettings, Sandbox, environment

#: Every file the local environment runs as a script (``python FILE``), not as a module.
SCRIPTS = (Path(environment.RUNTIME_SCRIPT), Path(services.MOTO_ROUTER))


def _stdlib_named_modules(folder: Path) -> list[str]:
    names = [path.stem for path in folder.glob("*.py")] + [path.name for path in folder.iterdir()
                                                           if (path / "__init__.py").is_file()]
    return sorted(name for name in names if name in sys.stdlib_module_names)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_module_beside_a_script_is_named_like_a_standard_one(script):
    # GIVEN a file the local environment starts as a script
    # THEN nothing beside it could shadow the standard library, were its folder on the path
    assert _stdlib_named_modules(script.parent) == [], f"rename these modules beside {script}"


def test_the_check_finds_a_module_named_like_a_standard_one(tmp_path):
    (tmp_path / "types.py").write_text("")
    (tmp_path / "http").mkdir()
    (tmp_path / "http" / "__init__.py").write_text("")
    (tmp_path / "endpoints.py").write_text("")
    assert _stdlib_named_modules(tmp_path) == ["http", "types"]


def test_the_runtime_starts_isolated():
    # -I: no script folder, no PYTHON* variables, no user site-packages on the handler's path
    assert environment.runtime_command("python")[1] == "-I"


@pytest.fixture
def regular_install(tmp_path) -> Path:
    """A bare venv with the ``workbook`` package copied into its site-packages, as ``pip install .`` lays it out."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next(venv.glob("lib/python*/site-packages"))
    shutil.copytree(Path(workbook.__file__).parent, site_packages / "workbook",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # The runtime client and its dependencies from this venv: a path line adds the folder without running
    # its .pth files (the editable install's among them).
    (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # A module beside the runtime named like a standard one, as the sandbox's own types.py once was:
    # isolation must keep it from shadowing the standard library all the same.
    (site_packages / "workbook" / "local" / "sandbox" / "types.py").write_text("raise ImportError('shadowed')\n")
    return venv


def test_a_regular_install_runs_the_runtime_without_shadowing(regular_install, tmp_path, monkeypatch):
    # GIVEN the runtime script of a regular install, run by that install's interpreter (no editable .pth)
    script = next(regular_install.glob("lib/python*/site-packages/workbook/local/sandbox/runtime.py"))
    monkeypatch.setattr(environment, "RUNTIME_SCRIPT", str(script))
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("import types\n\ndef handler(event, context):\n"
                                 "    return {'echo': event, 'types': types.SimpleNamespace.__module__}\n")
    config = FunctionConfig(key="app", function_name="lwb-test-isolation", memory_mb=256, timeout_s=10,
                            handler="app.handler", environment={}, code_paths=(str(code),))
    # WHEN the sandbox starts it and invokes the function
    with Sandbox(PlatformSettings(python=str(regular_install / "bin" / "python")), idle_expiry_s=60) as sandbox:
        sandbox.register(config)
        outcome = sandbox.invoke("lwb-test-isolation", {"n": 1})
    # THEN the handler ran, with the standard library's types
    assert outcome.ok, outcome.payload
    assert outcome.json() == {"echo": {"n": 1}, "types": "types"}


# -- which Python runs the handlers: said, never silent ---------------------------------------------
def _path_with(tmp_path, monkeypatch, name: str, target: str | None = None, script: str | None = None) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    if target:
        (folder / name).symlink_to(target)
    if script:
        (folder / name).write_text(script)
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def test_the_handler_python_is_detected_and_compared_with_the_stack_runtime(tmp_path, monkeypatch):
    # GIVEN an interpreter named like the stack's runtime on PATH that runs
    _path_with(tmp_path, monkeypatch, "python3.12", target=sys.executable)
    found = environment.handler_python.__wrapped__(sys.executable, "python3.12")
    # THEN the version is the interpreter's own, and the line says which runs the handlers and why
    assert found.version == ".".join(map(str, sys.version_info[:3]))
    assert found.stack_interpreter and not found.matches
    assert found.describe().startswith(f"Python {found.version} ({sys.executable}); the stack's runtime is python3.12")
    assert "is on PATH, not used" in found.describe()
    # and a runtime of the same version reads as the stack's own
    same = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert environment.handler_python.__wrapped__(sys.executable, same).describe().endswith(f"the stack's runtime ({same})")


def test_an_interpreter_on_path_that_does_not_run_is_named_with_its_error(tmp_path, monkeypatch):
    _path_with(tmp_path, monkeypatch, "python3.12", script="#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    found = environment.handler_python.__wrapped__(sys.executable, "python3.12")
    assert found.stack_interpreter is None
    assert found.describe().endswith("(python3.12 on PATH does not run: pyenv: python3.12: command not found)")


def test_no_interpreter_on_path_is_said(tmp_path, monkeypatch):
    _path_with(tmp_path, monkeypatch, "nothing")
    assert environment.handler_python.__wrapped__(sys.executable, "python3.12").describe().endswith("(no python3.12 on PATH)")

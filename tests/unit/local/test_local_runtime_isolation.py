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
from workbook.local.sandbox import FunctionConfig, PlatformSettings, Sandbox, artifacts, environment

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


def test_the_runtime_starts_isolated_without_site():
    # -I: no script folder, no PYTHON* variables, no user site-packages; -S: not the interpreter's own
    # site-packages either (the workbook's venv): a handler sees its package, its layer and the runtime's;
    # -B: no bytecode written into the unpacked artifacts, read-only on Lambda
    assert environment.runtime_command("python")[1:4] == ["-I", "-S", "-B"]


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
SAME = f"python{sys.version_info[0]}.{sys.version_info[1]}"   # a "stack runtime" this interpreter is
VERSION = ".".join(map(str, sys.version_info[:3]))


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """An empty PATH and pyenv root, no choice by variable: each test puts on them what it needs."""
    folder, pyenv = tmp_path / "bin", tmp_path / "pyenv"
    folder.mkdir()
    (pyenv / "versions").mkdir(parents=True)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("PYENV_ROOT", str(pyenv))
    monkeypatch.delenv(artifacts.HANDLER_PYTHON_ENV, raising=False)
    return folder, pyenv / "versions"


def _detect(stack_runtime: str) -> artifacts.HandlerPython:
    return artifacts.handler_python.__wrapped__(stack_runtime, sys.executable)


def _failing(path: Path) -> None:
    path.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    path.chmod(0o755)


def test_the_stack_runtime_on_path_runs_the_handlers(machine):
    # GIVEN an interpreter named like the stack's runtime on PATH, of that version
    (machine[0] / SAME).symlink_to(sys.executable)
    found = _detect(SAME)
    # THEN it runs the handlers, and the line says it is the stack's runtime
    assert found.matches and found.version == VERSION and found.stack_interpreter == found.executable
    assert found.describe() == f"Python {VERSION} ({found.executable}), the stack's runtime ({SAME})"


def test_an_interpreter_of_another_version_under_the_runtime_name_is_not_taken(machine):
    # GIVEN python3.12 on PATH that is really another version
    (machine[0] / "python3.12").symlink_to(sys.executable)
    found = _detect("python3.12")
    # THEN the fallback runs the handlers, said with the layer's Python
    assert not found.matches and found.stack_interpreter is None
    assert found.describe().endswith(f"not the stack's runtime python3.12 (no python3.12 on PATH or in pyenv); "
                                     f"the layer is built for Python {sys.version_info[0]}.{sys.version_info[1]}")


def test_a_pyenv_shim_that_does_not_run_is_passed_over_for_pyenvs_own_interpreter(machine):
    # GIVEN a shim on PATH that does not run (pyenv with another global version), and pyenv's versions
    _failing(machine[0] / SAME)
    for version in ("9.1", "10.0"):   # newest first by number, not by text; the broken one is passed over
        (machine[1] / f"{SAME[6:]}.{version}" / "bin").mkdir(parents=True)
    (machine[1] / f"{SAME[6:]}.9.1" / "bin" / SAME).symlink_to(sys.executable)
    _failing(machine[1] / f"{SAME[6:]}.10.0" / "bin" / SAME)
    found = _detect(SAME)
    # THEN pyenv's interpreter of that version runs the handlers
    assert found.matches and found.stack_interpreter
    assert found.describe().endswith(f", the stack's runtime ({SAME})")


def test_an_interpreter_on_path_that_does_not_run_is_named_with_its_error(machine):
    _failing(machine[0] / "python3.12")
    found = _detect("python3.12")
    assert found.stack_interpreter is None and not found.matches
    assert "(python3.12 on PATH does not run: pyenv: python3.12: command not found)" in found.describe()


def test_no_interpreter_is_said(machine):
    assert "(no python3.12 on PATH or in pyenv)" in _detect("python3.12").describe()


def test_the_variable_chooses_the_interpreter_and_says_so(machine, monkeypatch):
    monkeypatch.setenv(artifacts.HANDLER_PYTHON_ENV, sys.executable)
    found = _detect("python3.12")
    assert found.chosen_by == artifacts.HANDLER_PYTHON_ENV
    assert f"({artifacts.HANDLER_PYTHON_ENV} chooses it)" in found.describe()
    monkeypatch.setenv(artifacts.HANDLER_PYTHON_ENV, str(machine[0] / "nothing"))
    with pytest.raises(artifacts.ArtifactError, match=f"{artifacts.HANDLER_PYTHON_ENV}=.*does not run"):
        _detect("python3.12")

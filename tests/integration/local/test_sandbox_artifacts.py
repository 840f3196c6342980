"""The sandbox runs what deploy uploads: the same zips, byte for byte, unpacked; every stack handler starts from them.

Builds the layer from ``handlers/requirements.lock`` (a download from the package index the first time on
a machine; then cached under ``build/``).
"""
from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

import pulumi
import pytest

from infra import artifacts as deploy_artifacts
from infra import specs
from workbook.local.sandbox import FunctionConfig, Sandbox, artifacts

pytestmark = pytest.mark.timeout(1200)


def _deployed(archive: pulumi.Archive) -> Path:
    """The file a deploy uploads for a FileArchive."""
    assert isinstance(archive, pulumi.FileArchive), "deploy uploads a built zip"
    return Path(archive.path)


def _same_files(archive: Path, folder: Path) -> None:
    with zipfile.ZipFile(archive) as opened:
        members = {info.filename: opened.read(info) for info in opened.infolist() if not info.is_dir()}
    on_disk = {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert on_disk.keys() == members.keys()
    assert [name for name in members if members[name] != on_disk[name]] == []


@pytest.fixture(scope="module")
def handler_python():
    found = artifacts.handler_python()
    if not found.matches:
        pytest.skip(f"the stack's runtime does not run on this machine: handlers run on {found.describe()}, so the "
                    "local layer is built for that Python, not the one deploy uploads")
    return found


def test_the_layer_run_locally_is_the_one_deploy_uploads_for_x86_64(handler_python):
    # GIVEN the zip a deploy of an x86_64 function uploads as its layer
    uploaded = _deployed(deploy_artifacts.layer_code("x86_64"))
    # WHEN the sandbox prepares any function's path
    _, layer_python = artifacts.function_code_paths("data-processor", handler_python.python_version)
    # THEN its layer folder is that zip (by the sha256 of its bytes), unpacked file for file, byte for byte
    layer_folder = Path(layer_python).parent
    assert layer_folder.name == hashlib.sha256(uploaded.read_bytes()).hexdigest()[:24]
    assert artifacts.LOCAL_ARCH == "x86_64"
    _same_files(uploaded, layer_folder)


@pytest.mark.parametrize("key", specs.FUNCTION_KEYS)
def test_each_function_runs_its_deployed_package(key, handler_python):
    # GIVEN the zip a deploy uploads for the function
    spec = specs.spec(key)
    uploaded = _deployed(deploy_artifacts.function_code(spec.module))
    # WHEN the sandbox prepares the function's path
    package, _ = artifacts.function_code_paths(key, handler_python.python_version)
    # THEN the package folder is that zip, unpacked
    assert Path(package).name == hashlib.sha256(uploaded.read_bytes()).hexdigest()[:24]
    _same_files(uploaded, Path(package))


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(idle_expiry_s=300) as box:
        yield box


@pytest.mark.parametrize("key", specs.FUNCTION_KEYS)
def test_each_stack_handler_starts_from_its_package_and_layer(key, sandbox):
    # GIVEN a stack function on its package and the layer, as provisioning gives them
    runtime = artifacts.local_runtime()
    config = FunctionConfig(key=key, function_name=f"lwb-artifacts-{key}", memory_mb=512, timeout_s=30,
                            handler=f"{specs.spec(key).module}.handler", environment={"POWERTOOLS_METRICS_NAMESPACE": "x"},
                            code_paths=artifacts.function_code_paths(key, runtime.python_version))
    sandbox.register(config)
    # WHEN it is invoked with an event it does not understand
    outcome = sandbox.invoke(config.function_name, {"probe": True})
    # THEN INIT got through: every import resolved from the package, the layer or the runtime
    assert outcome.error_type not in ("Runtime.ImportModuleError", "Runtime.ExitError", "Runtime.Unknown"), \
        outcome.payload
    assert not any("Unable to import module" in line for line in outcome.log_lines)


@pytest.fixture
def without_the_stacks_python(monkeypatch):
    """The handlers' Python chosen as the workbook's own, as on a machine without python3.12."""
    monkeypatch.setenv(artifacts.HANDLER_PYTHON_ENV, sys.executable)
    artifacts.handler_python.cache_clear()
    artifacts.local_runtime.cache_clear()
    yield artifacts.handler_python()
    monkeypatch.delenv(artifacts.HANDLER_PYTHON_ENV)
    artifacts.handler_python.cache_clear()
    artifacts.local_runtime.cache_clear()


def test_on_another_python_the_layer_is_built_for_it_and_that_is_said(without_the_stacks_python):
    found = without_the_stacks_python
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if version == specs.RUNTIME.removeprefix("python"):
        pytest.skip("the workbook's Python is the stack's runtime: there is no other Python to fall back to")
    # GIVEN the handlers on the workbook's Python: the line says it is not the stack's runtime, and why
    assert not found.matches and found.python_version == version
    assert f"not the stack's runtime {specs.RUNTIME} ({artifacts.HANDLER_PYTHON_ENV} chooses it)" in found.describe()
    # WHEN a stack function runs there
    runtime = artifacts.local_runtime()
    package, layer = artifacts.function_code_paths("file-processor", runtime.python_version)
    config = FunctionConfig(key="file-processor", function_name="lwb-artifacts-fallback", memory_mb=512, timeout_s=30,
                            handler="file_processor.handler", environment={}, code_paths=(package, layer))
    with Sandbox(idle_expiry_s=60) as sandbox:
        sandbox.register(config)
        outcome = sandbox.invoke(config.function_name, {"probe": True})
    # THEN its layer is another zip than deploy's, built for that Python (binary wheels of that ABI), and INIT works
    assert Path(layer).parent.name != hashlib.sha256(_deployed(deploy_artifacts.layer_code("x86_64")).read_bytes()
                                                     ).hexdigest()[:24]
    abi = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
    assert list(Path(layer).rglob(f"*.{abi}-x86_64-linux-gnu.so")) and not list(Path(layer).rglob("*.cpython-312-*.so"))
    assert outcome.error_type not in ("Runtime.ImportModuleError", "Runtime.ExitError", "Runtime.Unknown"), \
        outcome.payload

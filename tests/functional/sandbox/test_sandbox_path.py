"""A handler's path in the sandbox is Lambda's: its package, its layer, the runtime's own packages, the stdlib.

Nothing of the workbook's environment is on it: a package the workbook has (pandas) but the function's
package and layer do not fails at INIT as it does on Lambda, with ``Runtime.ImportModuleError`` and
awslambdaric's message (the oracle: AWS's runtime client driven directly, on the same path).
"""
from __future__ import annotations

import json
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from runtime_api import run_awslambdaric

from workbook.local.sandbox import FunctionConfig, Sandbox, artifacts, local_runtime

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def function(tmp_path_factory) -> tuple[Path, Path]:
    """A function's package and a layer's python/ folder holding one module of its own."""
    root = tmp_path_factory.mktemp("function")
    task, layer = root / "task", root / "layer" / "python"
    task.mkdir()
    layer.mkdir(parents=True)
    (layer / "layer_helper.py").write_text("NAME = 'from the layer'\n")
    (task / "paths.py").write_text(textwrap.dedent("""
        import sys

        import boto3
        import layer_helper

        def handler(event, context):
            return {"path": sys.path, "executable": sys.executable, "version": list(sys.version_info[:2]),
                    "layer": layer_helper.NAME, "boto3": boto3.__file__, "flags": [sys.flags.isolated, sys.flags.no_site]}
    """).lstrip())
    (task / "needs_pandas.py").write_text("import pandas\n\n\ndef handler(event, context):\n    return {}\n")
    return task, layer


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(idle_expiry_s=300) as box:
        yield box


def _config(name: str, handler: str, function) -> FunctionConfig:
    task, layer = function
    return FunctionConfig(key=name, function_name=name, memory_mb=256, timeout_s=30, handler=handler,
                          environment={}, code_paths=(str(task), str(layer)))


def test_a_package_absent_from_package_and_layer_fails_as_on_lambda(function, sandbox):
    # GIVEN pandas, importable in the workbook's own environment, but in neither the package nor the layer
    pytest.importorskip("pandas")
    config = _config("lwb-path-needs-pandas", "needs_pandas.handler", function)
    # AND what AWS's runtime client answers on the same interpreter and path
    runtime = local_runtime()
    oracle = run_awslambdaric(str(function[0]), config.handler, {}, {"_FUNCTION_ARN": config.function_arn},
                              python=runtime.python, package_paths=(str(function[1]), *runtime.paths))
    # WHEN the sandbox invokes the function
    sandbox.register(config)
    outcome = sandbox.invoke(config.function_name, {})
    # THEN INIT fails with Lambda's error type and message, as awslambdaric's own
    assert outcome.error_type == "Runtime.ImportModuleError"
    error = outcome.json()
    assert error["errorMessage"] == "Unable to import module 'needs_pandas': No module named 'pandas'"
    expected = oracle.posted.json()
    assert (error["errorType"], error["errorMessage"]) == (expected["errorType"], expected["errorMessage"])


def test_the_path_is_package_layer_runtime_then_stdlib(function, sandbox):
    # GIVEN a handler that reports its interpreter and path
    config = _config("lwb-path-report", "paths.handler", function)
    sandbox.register(config)
    # WHEN it runs
    outcome = sandbox.invoke(config.function_name, {})
    assert outcome.ok, outcome.payload
    seen = json.loads(outcome.payload)
    runtime = local_runtime()
    task, layer = function
    # THEN it runs on the handlers' Python, isolated and without site
    assert seen["executable"] == runtime.python and seen["flags"] == [1, 1]
    assert ".".join(map(str, seen["version"])) == runtime.python_version == artifacts.handler_python().python_version
    # its path is the package, the layer, the runtime's packages, then that interpreter's standard library
    assert seen["path"][:3] == [str(task), str(layer), *runtime.paths]
    assert seen["layer"] == "from the layer" and seen["boto3"].startswith(runtime.paths[0])
    # and nothing of the workbook's environment: neither its venv nor its site-packages
    workbook_places = {sys.prefix, sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    assert not [entry for entry in seen["path"] for place in workbook_places if entry.startswith(place)]
    assert not [entry for entry in seen["path"] if "site-packages" in entry]

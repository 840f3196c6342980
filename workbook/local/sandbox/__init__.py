"""A Lambda-faithful sandbox: fresh interpreters per execution environment, under Lambda's limits."""
from workbook.local.sandbox.artifacts import ArtifactError, HandlerPython, LocalRuntime, handler_python, local_runtime
from workbook.local.sandbox.base import Sandbox, UnknownFunctionError
from workbook.local.sandbox.environment import ExecutionEnvironment, PlatformSettings
from workbook.local.sandbox.formats import LogFormat, Report, Status
from workbook.local.sandbox.limits import CpuMode, MemoryMode, detect, vcpus_for
from workbook.local.sandbox.models import FunctionConfig, InvocationOutcome, InvocationType
from workbook.local.sandbox.telemetry import Telemetry

__all__ = [
    "ArtifactError", "CpuMode", "ExecutionEnvironment", "FunctionConfig", "HandlerPython", "InvocationOutcome", "InvocationType",
    "LocalRuntime", "LogFormat", "handler_python", "local_runtime",
    "MemoryMode", "PlatformSettings", "Report", "Sandbox", "Status", "Telemetry", "UnknownFunctionError",
    "detect", "vcpus_for",
]

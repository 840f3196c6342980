"""The embedded default (``--env local``): moto's server, an embedded PostgreSQL and a Lambda-faithful sandbox.

Public surface:
    start, stop, status, current, activate, ensure_running   the one local environment
    Sandbox, FunctionConfig, InvocationOutcome               the sandbox, usable on its own
    LocalError and its family                                what can go wrong
See workbook/local/README.md for what is emulated and what is not.
"""
from workbook.local.errors import (
                                   AlreadyRunningError,
                                   InvocationError,
                                   LocalError,
                                   NotRunningError,
                                   ProvisioningError,
                                   ServiceStartError,
)
from workbook.local.manager import activate, current, ensure_running, start, status, stop
from workbook.local.sandbox import FunctionConfig, InvocationOutcome, Sandbox

__all__ = [
    "AlreadyRunningError", "FunctionConfig", "InvocationError", "InvocationOutcome", "LocalError", "NotRunningError",
    "ProvisioningError", "Sandbox", "ServiceStartError", "activate", "current", "ensure_running", "start", "status",
    "stop",
]

"""The embedded default (``--env local``): moto's server, an embedded PostgreSQL and a Lambda-faithful sandbox.

Public surface:
    start, stop, restart, status, current, activate, ensure_running   the local environment (one per state folder)
    verify, owner, Verification                              is it still the environment I started?
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
from workbook.local.manager import (
                                    Verification,
                                    activate,
                                    current,
                                    ensure_running,
                                    owner,
                                    restart,
                                    start,
                                    status,
                                    stop,
                                    verify,
)
from workbook.local.sandbox import FunctionConfig, InvocationOutcome, Sandbox

__all__ = [
    "AlreadyRunningError", "FunctionConfig", "InvocationError", "InvocationOutcome", "LocalError", "NotRunningError",
    "ProvisioningError", "Sandbox", "ServiceStartError", "Verification", "activate", "current", "ensure_running",
    "owner", "restart", "start", "status", "stop", "verify",
]

"""The local environment's exceptions: one root, one family per concern."""
from __future__ import annotations

from workbook.errors import BadInput, WorkbookError


class LocalError(WorkbookError):
    """Something in the embedded default failed; the message says what to do."""


class NotRunningError(LocalError):
    """No local environment is running (start one with ``workbook local start``)."""


class AlreadyRunningError(LocalError):
    """A local environment is already running; stop it first or use it."""


class ServiceStartError(LocalError):
    """moto, PostgreSQL or the sandbox engine did not come up."""


class ProvisioningError(LocalError):
    """The plan could not be turned into local resources."""


class ArtifactError(LocalError):
    """What an execution environment runs (a package, the layer, the runtime's packages) could not be prepared."""


class InvocationError(LocalError):
    """An invocation could not be made (not a function error: those are results)."""


class LocalInputError(LocalError, BadInput):
    """An argument of a ``workbook local`` command is invalid: an unknown function, a bad event or option."""


class BadRequestBody(LocalInputError):
    """A request to a local endpoint whose body cannot be read safely: answered with ``status``, the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

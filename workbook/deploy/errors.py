"""Deploy errors: one family under ``WorkbookError``, and the translation of Automation API failures.

``translate_error`` turns a Pulumi ``CommandError`` (or an OS error) into the ``DeployError`` whose
message says how to recover: a locked stack, pending operations, a missing stack, a wrong
passphrase, an unreachable backend, a failing program.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pulumi import automation as auto

from workbook.errors import ExitCode, WorkbookError

if TYPE_CHECKING:  # pragma: no cover
    from workbook.deploy.operations import Run
    from workbook.deploy.stacks import StackTarget

INSTALL_URL = "https://www.pulumi.com/docs/install/"
SECRET_MASK = "[secret]"


class DeployError(WorkbookError):
    """A Pulumi operation could not run or failed; the message says how to recover."""

    stdout: str = ""
    stderr: str = ""


class PulumiCliMissing(DeployError):
    """The Pulumi CLI is not on PATH (or too old); install it, or use the offline plan."""


class PassphraseMissing(DeployError):
    """The environment variable holding the secrets passphrase is not set."""


class BackendError(DeployError):
    """The state backend in params is malformed, unreachable or not logged in."""


class LocalEndpointMissing(DeployError):
    """``--env local`` needs the local AWS endpoint, and none is running."""


class StackLockedError(DeployError):
    """Another update holds the stack: a concurrent run, or the lock left by an interrupted one."""


class PendingOperationsError(DeployError):
    """An interrupted run left operations pending in the stack's state."""


class StackNotFound(DeployError):
    """The stack does not exist in the backend yet (nothing deployed)."""


class ProgramError(DeployError):
    """The Pulumi program (infra/) raised, or a resource operation failed."""


class DeployInterrupted(DeployError):
    """The run was interrupted; the stack may be locked or hold pending operations."""

    exit_code = ExitCode.INTERRUPTED


class StackChoiceError(DeployError):
    """The stack asked for is not part of this environment's deploy."""

    exit_code = ExitCode.BAD_INPUT


class ProdSafetyError(DeployError):
    """A prod destroy lacks its confirmation, or a prod up its approval."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, preview: Run | None = None) -> None:
        super().__init__(message)
        self.preview = preview


def cli_context(target: StackTarget) -> str:
    """How to run a pulumi command by hand against this stack."""
    passphrase = "" if not target.backend.self_managed else f" (with {target.settings.params.backend.passphrase_env} set)"
    return f"from {target.work_dir}{passphrase}"


def error_lines(text: str, limit: int = 6) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    picked = [line for line in lines if line.lower().startswith(("error", "  error", "* ")) or "error:" in line.lower()]
    chosen = (picked or lines)[-limit:]
    return "; ".join(chosen)


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, SECRET_MASK)
    return text


def operation_verb(operation: str) -> str:
    """``cannot {operation_verb(operation)} STACK`` reads as English (``outputs`` is no verb)."""
    return {"outputs": "read the outputs of", "up": "deploy"}.get(operation, operation)


def translate_error(exc: BaseException, target: StackTarget, operation: str,
                    secrets: Sequence[str] = (), diagnostics: Sequence[str] = ()) -> DeployError:
    """Turn an Automation API (or OS) error into a DeployError whose message says how to recover.

    ``diagnostics`` are the engine's error events of the run, the most precise account of what failed.
    """
    if isinstance(exc, DeployError):
        return exc
    fqn = target.fully_qualified_name
    where = cli_context(target)
    if isinstance(exc, FileNotFoundError) and "pulumi" in str(exc):
        return PulumiCliMissing(f"cannot {operation_verb(operation)} {fqn}: the Pulumi CLI disappeared from PATH ({exc}); "
                                f"install it from {INSTALL_URL}")
    if isinstance(exc, auto.InvalidVersionError):
        return PulumiCliMissing(f"cannot {operation_verb(operation)} {fqn}: {exc}; install a newer Pulumi CLI from {INSTALL_URL}")
    if not isinstance(exc, auto.CommandError):
        return DeployError(f"{operation} of {fqn} failed: {type(exc).__name__}: {scrub(str(exc), secrets)}")

    stdout = scrub(result_part(exc, "stdout"), secrets)
    stderr = scrub(result_part(exc, "stderr"), secrets)
    low = f"{stderr}\n{stdout}".lower()
    err_low = stderr.lower()
    diagnosed = [scrub(" ".join(d.split()), secrets) for d in diagnostics if d.strip()]
    detail = "; ".join(diagnosed[-4:]) if diagnosed else error_lines(f"{stdout}\n{stderr}")
    recover_lock = (
        f"If that run is still going, wait for it to finish. If it was interrupted, release the lock with "
        f"`pulumi cancel --yes --stack {fqn}` {where}, then reconcile the state with "
        f"`workbook refresh --env {target.env} --stack {target.kind.value}` (`pulumi refresh`)."
    )
    if isinstance(exc, auto.ConcurrentUpdateError) or "currently locked by" in low or "[409] conflict" in low:
        holder = "; ".join(line.strip() for line in stderr.splitlines() if line.strip())[-600:] or detail
        error: DeployError = StackLockedError(
            f"{operation} of {fqn}: another update holds the stack ({holder}). {recover_lock}")
    elif "pending operations" in err_low or "interrupted while" in err_low:
        error = PendingOperationsError(
            f"{operation} of {fqn}: an interrupted run left pending operations ({detail}). Check in AWS whether "
            f"those resources exist, then run `workbook refresh --env {target.env} --stack {target.kind.value} "
            f"--clear-pending-creates` (`pulumi refresh --clear-pending-creates`); or edit the state by hand: "
            f"`pulumi stack export --stack {fqn} --file state.json`, remove the entries under "
            f"pending_operations, `pulumi stack import --stack {fqn} --file state.json` ({where}).")
    elif isinstance(exc, auto.StackNotFoundError) or "no stack named" in low:
        error = StackNotFound(
            f"{operation}: stack {fqn} does not exist in {target.backend.url}; nothing is deployed there yet. "
            f"Deploy it with `workbook deploy --env {target.env}`, or check backend.url in {target.settings.source}.")
    elif "passphrase" in low and ("incorrect" in low or "must be set" in low or "failed to decrypt" in low):
        name = target.settings.params.backend.passphrase_env
        error = PassphraseMissing(
            f"{operation} of {fqn}: the passphrase in {name} does not open this stack's secrets ({detail}). "
            f"Set {name} to the passphrase the stack was created with.")
    elif target.backend.scheme in ("s3", "gs", "azblob") and any(
            marker in low for marker in ("nosuchbucket", "accessdenied", "no valid credential", "failed to login",
                                         "unable to open bucket", "could not create bucket", "blob (key")):
        error = BackendError(
            f"{operation} of {fqn}: cannot use the state backend {target.backend.url} ({detail}). Check that the "
            f"bucket exists and that your cloud credentials can read and write it (backend.url in "
            f"{target.settings.source}).")
    elif not target.backend.self_managed and any(
            marker in low for marker in ("pulumi_access_token", "pulumi login", "unauthorized", "[401]")):
        error = BackendError(
            f"{operation} of {fqn}: not logged in to {target.backend.url} ({detail}). Run `pulumi login "
            f"{target.backend.url}` or set PULUMI_ACCESS_TOKEN.")
    elif isinstance(exc, (auto.InlineSourceRuntimeError, auto.RuntimeError)) or "unhandled exception" in low:
        hint = ""
        if "paramserror" in low or "params/" in low:
            hint = f" Fix {target.settings.source} as the message says."
        elif "stackreference" in low or "unknown stack" in low:
            hint = (" The compute stack reads the foundation through StackReference: deploy the foundation first "
                    f"(`workbook deploy --env {target.env} --stack foundation`) or fix foundation.stacks.")
        error = ProgramError(f"{operation} of {fqn}: the Pulumi program failed: {detail}.{hint}")
    else:
        code = result_part(exc, "code")
        error = DeployError(
            f"{operation} of {fqn} failed (pulumi exit code {code}): {detail or 'no error output'}. "
            f"The full output is on the error's .stdout and .stderr; to retry by hand run pulumi {where}.")
    error.stdout, error.stderr = stdout, stderr
    return error


def result_part(exc: BaseException, part: str) -> str:
    """stdout / stderr / code of an automation CommandError, which keeps its CommandResult only as text.

    The text is ``"\n code: C\n stdout: OUT\n stderr: ERR"`` (see pulumi.automation._cmd.CommandResult).
    """
    text = str(exc)
    head, found_out, rest = text.partition("\n stdout: ")
    if not found_out:
        return text if part == "stderr" else ""
    stdout, found_err, stderr = rest.rpartition("\n stderr: ")
    if not found_err:
        stdout, stderr = rest, ""
    if part == "code":
        return head.partition(" code: ")[2].strip() or "?"
    return stdout if part == "stdout" else stderr



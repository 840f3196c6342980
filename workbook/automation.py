"""Deploys through Pulumi's Automation API: preview, up, refresh, destroy and outputs.

Each environment has a compute stack (project ``<project_name>-compute``) and, when its params
say ``foundation.standalone``, a foundation stack (``<project_name>-foundation``) deployed first
and destroyed last. Stacks are named after the environment; with a self-managed ("DIY") backend
their fully qualified names are ``organization/<project>/<env>``.

Everything a stack needs comes from ``params/<env>.yaml``:
- the state backend (``backend.url``; relative ``file://`` paths resolve against the repo root);
- the secrets passphrase, read from the environment variable named by ``backend.passphrase_env``
  and handed to the Pulumi CLI's environment only (never written to disk or printed);
- the stack config, derived on every run and never edited by hand: ``workbook:params`` (the
  validated params as JSON, which ``infra.config.from_pulumi_config`` reads back), ``aws:region``,
  and for ``local`` the aws provider pointed at the local endpoint.

The Pulumi CLI is optional. Without it, every operation raises ``PulumiCliMissing`` (saying how
to get it) and ``deploy_or_plan`` falls back to the offline plan of ``workbook.plan``.

Operations run in a worker thread, off any running asyncio loop, so they work inside Jupyter.
Preview and up stream the CLI's output live and report progress from the engine events; the
change summary comes back as a DataFrame. Secret outputs are masked as ``[secret]``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from infra import config
from infra.config import REPO_ROOT, Settings
from workbook.errors import WorkbookError

if TYPE_CHECKING:
    import pandas as pd
    from pulumi import automation as auto

    from workbook.plan import Plan

__all__ = [
    "Backend", "BackendError", "DeployError", "DeployInterrupted", "LocalEndpointMissing", "Mode", "Operation",
    "PassphraseMissing", "PendingOperationsError", "ProdSafetyError", "ProgramError", "Progress",
    "PulumiCliMissing", "Result", "Run", "StackChoiceError", "StackKind", "StackLockedError", "StackNotFound",
    "StackRun", "StackTarget", "check_destroy_allowed", "cli_available", "deploy_or_plan", "destroy",
    "diff_outputs", "diff_resources", "expected_destroy_confirmation", "mask_outputs", "outputs", "plan_summary",
    "preview", "refresh", "require_cli", "resolve_backend", "stack_config", "targets", "translate_error", "up",
]

INSTALL_URL = "https://www.pulumi.com/docs/install/"
SECRET_MASK = "[secret]"
# Self-managed backends put every stack under this organization name.
DIY_ORGANIZATION = "organization"
# Where each stack's workspace (Pulumi.yaml, Pulumi.<stack>.yaml: derived config, no secrets) lives, so
# the recovery commands in error messages can be run from it by hand. Git-ignored.
WORKSPACES_DIR = REPO_ROOT / ".state" / "pulumi-workspaces"
PROD_ENV = "prod"
LOCAL_ENV = "local"
# Test credentials for the local endpoint (moto accepts any; the same values as workbook.local).
LOCAL_ACCESS_KEY = "testing"
LOCAL_SECRET_KEY = "testing"
# Every AWS service the compute and foundation programs call, by the provider's canonical endpoint key.
# (STS and EC2 are called by data sources: get_caller_identity, get_availability_zones.)
ENDPOINT_SERVICES = (
    "apigatewayv2", "appautoscaling", "cloudwatch", "ec2", "events", "iam", "kms", "lambda", "logs",
    "rds", "s3", "secretsmanager", "sfn", "sns", "sqs", "sts",
)


class StackKind(str, Enum):
    """The two Pulumi projects of the workbook."""

    FOUNDATION = "foundation"
    COMPUTE = "compute"


class Operation(str, Enum):
    """What a run does to a stack."""

    PREVIEW = "preview"
    UP = "up"
    REFRESH = "refresh"
    DESTROY = "destroy"
    OUTPUTS = "outputs"


class Mode(str, Enum):
    """How ``deploy_or_plan`` produced its result."""

    AUTOMATION = "automation"
    OFFLINE_PLAN = "offline-plan"


# ---------------------------------------------------------------------------------------------
# Errors: one family under WorkbookError. Each message says what happened and what to do.
# ---------------------------------------------------------------------------------------------
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


class StackChoiceError(DeployError):
    """The stack asked for is not part of this environment's deploy."""


class ProdSafetyError(DeployError):
    """A prod destroy lacks its confirmation, or a prod up its approval."""

    def __init__(self, message: str, preview: "Run | None" = None) -> None:
        super().__init__(message)
        self.preview = preview


# ---------------------------------------------------------------------------------------------
# The Pulumi CLI.
# ---------------------------------------------------------------------------------------------
def cli_path() -> str | None:
    """The Pulumi CLI on PATH, or None."""
    return shutil.which("pulumi")


def cli_available() -> bool:
    return cli_path() is not None


def require_cli(operation: str = "deploy") -> str:
    """The CLI's path; raise PulumiCliMissing, saying how to get it and what works without it."""
    path = cli_path()
    if path is None:
        raise PulumiCliMissing(
            f"cannot {operation}: the Pulumi CLI is not on PATH. Install it ({INSTALL_URL}, e.g. "
            "`curl -fsSL https://get.pulumi.com | sh`, then add ~/.pulumi/bin to PATH). Without it, "
            "`workbook plan --env ENV` (or deploy_or_plan in a notebook) shows the offline plan instead."
        )
    return path


# ---------------------------------------------------------------------------------------------
# Backend, passphrase and stack names.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    """A resolved state backend URL."""

    url: str
    scheme: str                 # file | s3 | gs | azblob | https | http
    path: Path | None = None    # the folder of a file:// backend

    @property
    def self_managed(self) -> bool:
        """True for DIY backends (files, buckets); False for Pulumi Cloud (or a self-hosted service)."""
        return self.scheme not in ("https", "http")


def resolve_backend(settings: Settings) -> Backend:
    """``backend.url`` of the params, resolved: ``file://`` relative to the repo root, ``~`` expanded."""
    raw = settings.params.backend.url.strip()
    where = f"{settings.source}: field 'backend.url' = {raw!r}"
    forms = ("file://PATH (relative to the repo root, or ~/..., or /absolute), s3://BUCKET[/prefix][?region=...], "
             "gs://BUCKET, azblob://CONTAINER, or https://api.pulumi.com for Pulumi Cloud")
    if raw.startswith("file://"):
        location, sep, query = raw[len("file://"):].partition("?")
        if not location:
            raise BackendError(f"{where} has no path; use {forms}")
        path = Path(os.path.expanduser(location))
        if not path.is_absolute():
            path = REPO_ROOT / path
        path = Path(os.path.normpath(path))
        return Backend(url=f"file://{path.as_posix()}{sep}{query}", scheme="file", path=path)
    parts = urlsplit(raw)
    if parts.scheme in ("s3", "gs", "azblob"):
        if not parts.netloc:
            raise BackendError(f"{where} names no bucket; use {forms}")
        return Backend(url=raw, scheme=parts.scheme)
    if parts.scheme in ("https", "http") and parts.netloc:
        return Backend(url=raw.rstrip("/"), scheme=parts.scheme)
    raise BackendError(f"{where} is not a backend URL Pulumi understands; use {forms}")


class _Secret(str):
    """A string whose repr is masked: LocalWorkspace's repr prints its env_vars, and tracebacks print locals."""

    def __repr__(self) -> str:
        return repr(SECRET_MASK)


def _passphrase_env(settings: Settings, backend: Backend) -> tuple[dict[str, str], str | None]:
    """The variables that give the CLI the passphrase, and the passphrase (to scrub from output).

    Raises PassphraseMissing when the variable named in params is unset. The value only ever goes
    into the CLI's process environment.
    """
    params = settings.params.backend
    if params.secrets_provider == "default" and not backend.self_managed:
        return {}, None   # Pulumi Cloud's own secrets manager
    name = params.passphrase_env
    value = os.environ.get(name)
    if value is not None:
        value = _Secret(value)
        return {"PULUMI_CONFIG_PASSPHRASE": value}, value
    passphrase_file = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if name == "PULUMI_CONFIG_PASSPHRASE" and passphrase_file:
        return {"PULUMI_CONFIG_PASSPHRASE_FILE": passphrase_file}, None
    hint = " (any value works for the local environment, but keep it the same across runs)" if settings.env == LOCAL_ENV else ""
    raise PassphraseMissing(
        f"the secrets passphrase is not set: export {name}=<passphrase>{hint}. {settings.source} "
        f"(field 'backend.passphrase_env') names {name} as the variable that holds it; the workbook "
        "passes it to the Pulumi CLI only and never writes it to disk."
    )


@dataclass(frozen=True)
class StackTarget:
    """One stack of one environment: its project, name and backend."""

    settings: Settings
    kind: StackKind
    backend: Backend

    @property
    def env(self) -> str:
        return self.settings.env

    @property
    def project(self) -> str:
        return f"{self.settings.params.project_name}-{self.kind.value}"

    @property
    def stack_name(self) -> str:
        """The name passed to the Automation API (the environment; qualified when PULUMI_ORG is set for Cloud)."""
        org = self.organization
        return f"{org}/{self.project}/{self.env}" if org and not self.backend.self_managed else self.env

    @property
    def organization(self) -> str | None:
        if self.backend.self_managed:
            return DIY_ORGANIZATION
        return os.environ.get("PULUMI_ORG") or None

    @property
    def fully_qualified_name(self) -> str:
        """``organization/<project>/<env>`` for DIY backends; ``<org>/<project>/<env>`` for Pulumi Cloud."""
        return f"{self.organization or '<your-org>'}/{self.project}/{self.env}"

    @property
    def work_dir(self) -> Path:
        return WORKSPACES_DIR / self.env / self.project

    @property
    def label(self) -> str:
        return self.kind.value


def _settings(env: str | Settings) -> Settings:
    return env if isinstance(env, Settings) else config.load(env)


def targets(env: str | Settings, stack: str | StackKind | None = None, *, order: str = "up") -> list[StackTarget]:
    """The stacks an operation touches, in order: foundation first for ``up``, compute first for ``destroy``.

    ``stack`` narrows to one (``"compute"`` or ``"foundation"``); the foundation is only part of an
    environment that deploys it standalone.
    """
    settings = _settings(env)
    backend = resolve_backend(settings)
    standalone = settings.params.foundation.standalone
    kinds = [StackKind.FOUNDATION, StackKind.COMPUTE] if standalone else [StackKind.COMPUTE]
    if stack is not None:
        try:
            wanted = StackKind(stack)
        except ValueError:
            raise StackChoiceError(f"unknown stack {stack!r}; choose compute or foundation") from None
        if wanted not in kinds:
            raise StackChoiceError(
                f"{settings.source}: the foundation of {settings.env!r} is not deployed by the workbook "
                f"(field 'foundation.standalone' is false; the compute stack references "
                f"{settings.params.foundation.stacks.network!r} and its siblings). Set foundation.standalone: true "
                "to deploy it from infra/foundation.py, or leave out --stack foundation."
            )
        kinds = [wanted]
    if order == "destroy":
        kinds.reverse()
    return [StackTarget(settings, kind, backend) for kind in kinds]


# ---------------------------------------------------------------------------------------------
# Stack config, derived from params.
# ---------------------------------------------------------------------------------------------
def local_endpoint_url() -> str:
    """The local AWS endpoint: ``AWS_ENDPOINT_URL``, or the running local environment's."""
    url = os.environ.get("AWS_ENDPOINT_URL") or _running_local_endpoint()
    if url:
        return url
    raise LocalEndpointMissing(
        "--env local deploys to the local AWS endpoint, and none is running: start it with "
        "`workbook local start` (or set AWS_ENDPOINT_URL to a running endpoint), then run again."
    )


def _running_local_endpoint() -> str | None:
    try:
        from workbook.local import manager

        recorded = manager.current()
    except Exception:  # noqa: BLE001 - the local environment is optional; absent or broken means "not running"
        return None
    return (recorded or {}).get("endpoint_url") or None


def stack_config(settings: Settings, endpoint_url: str | None = None) -> dict[str, str]:
    """The stack config of an environment, as ``pulumi config set --path`` keys and string values.

    ``workbook:params`` is the validated params as JSON (``config.from_mapping`` reads it back);
    ``aws:region`` comes from ``aws_region``. For ``local`` the aws provider is pointed at
    ``endpoint_url`` (default: the running local environment) with the skip flags moto needs.
    """
    params = settings.params
    derived = {
        "workbook:env": settings.env,
        "workbook:params": json.dumps(params.model_dump(mode="json"), sort_keys=True, separators=(",", ":")),
        "aws:region": params.aws_region,
    }
    if settings.env == LOCAL_ENV:
        url = endpoint_url or local_endpoint_url()
        derived.update({
            "aws:skipCredentialsValidation": "true",
            "aws:skipRequestingAccountId": "true",
            "aws:skipMetadataApiCheck": "true",
            "aws:s3UsePathStyle": "true",
            "aws:accessKey": LOCAL_ACCESS_KEY,
            "aws:secretKey": LOCAL_SECRET_KEY,
        })
        derived.update({f"aws:endpoints[0].{service}": url for service in ENDPOINT_SERVICES})
    return derived


def _top_key(path_key: str) -> str:
    return path_key.split("[", 1)[0].split(".", 1)[0]


def _apply_config(stack: "auto.Stack", derived: Mapping[str, str]) -> None:
    """Make the stack's config exactly ``derived``: drop keys params no longer produce, rebuild structured ones."""
    from pulumi import automation as auto

    wanted_top = {_top_key(key) for key in derived}
    structured = {_top_key(key) for key in derived if _top_key(key) != key}
    current = stack.get_all_config()
    stale = [key for key in current if key not in wanted_top or key in structured]
    if stale:
        stack.remove_all_config(stale)
    stack.set_all_config({key: auto.ConfigValue(value=value) for key, value in derived.items()}, path=True)


# ---------------------------------------------------------------------------------------------
# Programs and workspaces.
# ---------------------------------------------------------------------------------------------
def _program(kind: StackKind) -> Callable[[], None]:
    """The inline program: reads the derived stack config, like ``pulumi up`` from infra/ does."""

    def program() -> None:
        import pulumi

        from infra import compute, foundation

        settings = config.from_pulumi_config()
        module = compute if kind is StackKind.COMPUTE else foundation
        for name, value in module.build(settings).items():
            pulumi.export(name, value)

    program.__name__ = f"{kind.value}_program"
    return program


# Provider plugins the programs need, by Python package: installing the version that matches the SDK
# up front makes the first run fail early and clearly when it cannot be downloaded.
PROVIDER_PLUGINS = {"aws": "pulumi_aws", "random": "pulumi_random"}


def _install_plugins(stack: "auto.Stack") -> None:
    from importlib.metadata import PackageNotFoundError, version

    workspace = getattr(stack, "workspace", None)
    if workspace is None:
        return
    for plugin, package in PROVIDER_PLUGINS.items():
        try:
            wanted = version(package)
        except PackageNotFoundError:
            continue
        try:
            workspace.install_plugin(plugin, f"v{wanted}")
        except Exception as exc:  # noqa: BLE001 - translated here
            raise DeployError(
                f"cannot install the Pulumi {plugin} provider plugin v{wanted} (it matches the installed {package}): "
                f"{_error_lines(_result_part(exc, 'stderr') or str(exc))}. Check the network, or install it by hand: "
                f"`pulumi plugin install resource {plugin} {wanted}`.") from None


@dataclass
class _Opened:
    stack: "auto.Stack"
    secrets: tuple[str, ...]   # values to scrub from anything shown


def _open(target: StackTarget, operation: str, *, create: bool, configure: bool) -> _Opened:
    """Check everything that can be checked, then create or select the stack with its derived config.

    The order matters: the CLI, the passphrase and (for local) the endpoint are checked before anything
    is written, so a missing piece leaves no workspace behind.
    """
    require_cli(f"{operation} {target.fully_qualified_name}")
    env_vars, passphrase = _passphrase_env(target.settings, target.backend)
    derived = stack_config(target.settings) if configure else None
    from pulumi import automation as auto

    target.work_dir.mkdir(parents=True, exist_ok=True)
    if target.backend.path is not None:
        target.backend.path.mkdir(parents=True, exist_ok=True)
    env_vars = {**env_vars, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    if target.env != LOCAL_ENV:
        # A notebook that used the local environment has AWS_ENDPOINT_URL set (workbook.local exports it);
        # the aws provider's SDK would follow it. Blank it for the CLI so AWS envs go to AWS.
        env_vars.update({name: "" for name in os.environ if name.startswith("AWS_ENDPOINT_URL")})
    uses_passphrase = "PULUMI_CONFIG_PASSPHRASE" in env_vars or "PULUMI_CONFIG_PASSPHRASE_FILE" in env_vars
    options = auto.LocalWorkspaceOptions(
        work_dir=str(target.work_dir),
        project_settings=auto.ProjectSettings(
            name=target.project, runtime="python", backend=auto.ProjectBackend(url=target.backend.url),
            description=f"Lambda workbook {target.kind.value} stack (inline program; config derived from params)",
        ),
        secrets_provider="passphrase" if uses_passphrase else None,
        env_vars=env_vars,
    )
    secrets = (passphrase,) if passphrase else ()
    opener = auto.create_or_select_stack if create else auto.select_stack
    try:
        stack = opener(stack_name=target.stack_name, project_name=target.project,
                       program=_program(target.kind), opts=options)
        if derived is not None:
            _apply_config(stack, derived)
            _install_plugins(stack)
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise translate_error(exc, target, operation, secrets) from None
    return _Opened(stack, secrets)


# ---------------------------------------------------------------------------------------------
# Error translation.
# ---------------------------------------------------------------------------------------------
def _cli_context(target: StackTarget) -> str:
    """How to run a pulumi command by hand against this stack."""
    passphrase = "" if not target.backend.self_managed else f" (with {target.settings.params.backend.passphrase_env} set)"
    return f"from {target.work_dir}{passphrase}"


def _error_lines(text: str, limit: int = 6) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    picked = [line for line in lines if line.lower().startswith(("error", "  error", "* ")) or "error:" in line.lower()]
    chosen = (picked or lines)[-limit:]
    return "; ".join(chosen)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, SECRET_MASK)
    return text


def translate_error(exc: BaseException, target: StackTarget, operation: str,
                    secrets: Sequence[str] = (), diagnostics: Sequence[str] = ()) -> DeployError:
    """Turn an Automation API (or OS) error into a DeployError whose message says how to recover.

    ``diagnostics`` are the engine's error events of the run, the most precise account of what failed.
    """
    from pulumi import automation as auto

    if isinstance(exc, DeployError):
        return exc
    fqn = target.fully_qualified_name
    where = _cli_context(target)
    if isinstance(exc, FileNotFoundError) and "pulumi" in str(exc):
        return PulumiCliMissing(f"cannot {operation} {fqn}: the Pulumi CLI disappeared from PATH ({exc}); "
                                f"install it from {INSTALL_URL}")
    if isinstance(exc, auto.InvalidVersionError):
        return PulumiCliMissing(f"cannot {operation} {fqn}: {exc}; install a newer Pulumi CLI from {INSTALL_URL}")
    if not isinstance(exc, auto.CommandError):
        return DeployError(f"{operation} of {fqn} failed: {type(exc).__name__}: {_scrub(str(exc), secrets)}")

    stdout = _scrub(_result_part(exc, "stdout"), secrets)
    stderr = _scrub(_result_part(exc, "stderr"), secrets)
    low = f"{stderr}\n{stdout}".lower()
    err_low = stderr.lower()
    diagnosed = [_scrub(" ".join(d.split()), secrets) for d in diagnostics if d.strip()]
    detail = "; ".join(diagnosed[-4:]) if diagnosed else _error_lines(f"{stdout}\n{stderr}")
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
        code = _result_part(exc, "code")
        error = DeployError(
            f"{operation} of {fqn} failed (pulumi exit code {code}): {detail or 'no error output'}. "
            f"The full output is on the error's .stdout and .stderr; to retry by hand run pulumi {where}.")
    error.stdout, error.stderr = stdout, stderr
    return error


def _result_part(exc: BaseException, part: str) -> str:
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


# ---------------------------------------------------------------------------------------------
# Running off the event loop, with progress and interruption.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """Where a run stands: resources done out of those the engine has announced so far."""

    stack: str
    operation: str
    done: int
    total: int
    resource: str = ""
    final: bool = False

    def __str__(self) -> str:
        more = "" if self.final else "+"
        return f"[{self.stack} {self.operation}] {self.done}/{self.total}{more} resources" + (
            f" ({self.resource})" if self.resource else "")


def _print_progress_every(step: int) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        if progress.final or progress.done % step == 0:
            print(str(progress), flush=True)
    return show


class _Recorder:
    """Collects per-resource steps from engine events and reports progress."""

    def __init__(self, stack: str, operation: str, progress: Callable[[Progress], None] | None) -> None:
        self.stack, self.operation, self.progress = stack, operation, progress
        self.steps: dict[str, dict[str, str]] = {}
        self.done: set[str] = set()
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.changes_summary: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self._record(event)

    def _record(self, event: Any) -> None:
        if getattr(event, "resource_pre_event", None):
            meta = event.resource_pre_event.metadata
            self.steps[meta.urn] = {"operation": _op_name(meta.op), "type": meta.type, "name": _urn_name(meta.urn)}
        elif getattr(event, "res_outputs_event", None):
            meta = event.res_outputs_event.metadata
            self.steps.setdefault(meta.urn, {"operation": _op_name(meta.op), "type": meta.type,
                                             "name": _urn_name(meta.urn)})
            if meta.urn not in self.done:
                self.done.add(meta.urn)
                if self.progress:
                    self.progress(Progress(self.stack, self.operation, len(self.done), len(self.steps),
                                           _urn_name(meta.urn)))
        elif getattr(event, "res_op_failed_event", None):
            self.failed.append(event.res_op_failed_event.metadata.urn)
        elif getattr(event, "diagnostic_event", None):
            diagnostic = event.diagnostic_event
            if diagnostic.severity == "error":
                self.errors.append(diagnostic.message.strip())
        elif getattr(event, "summary_event", None):
            self.changes_summary = {_op_name(k): int(v) for k, v in (event.summary_event.resource_changes or {}).items()}

    def finish(self) -> None:
        if self.progress:
            self.progress(Progress(self.stack, self.operation, len(self.done), len(self.steps), final=True))


def _op_name(op: Any) -> str:
    return str(getattr(op, "value", op))


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _pulumi_children() -> list[int]:
    """PIDs of the pulumi CLI processes this process started (Linux /proc; empty elsewhere)."""
    me, found = os.getpid(), []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command, _, rest = stat.partition(") ")
        fields = rest.split()
        if len(fields) > 1 and fields[1] == str(me) and command.split("(", 1)[-1].startswith("pulumi"):
            found.append(int(entry.name))
    return found


def _terminal_delivered_sigint() -> bool:
    """True when Ctrl-C came from a terminal whose foreground group includes the pulumi child."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False   # no controlling terminal: Jupyter, schedulers
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _wait(worker: threading.Thread) -> None:
    worker.join(0.2)   # short waits keep Ctrl-C responsive


def _off_loop(work: Callable[[], Any], on_interrupt: Callable[[bool], DeployError]) -> Any:
    """Run ``work`` in a worker thread (never on the caller's event loop) and wait for it.

    A first Ctrl-C asks the pulumi CLI to stop gracefully (it finishes in-flight resource operations)
    and waits; a second stops waiting. Either way the caller gets a DeployInterrupted saying how to recover.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="workbook-automation", daemon=True)
    worker.start()
    interrupted = False
    while True:
        try:
            _wait(worker)
            if not worker.is_alive():
                break
        except KeyboardInterrupt:
            if interrupted:
                raise on_interrupt(False) from None
            interrupted = True
            if not _terminal_delivered_sigint():
                for pid in _pulumi_children():
                    try:
                        os.kill(pid, signal.SIGINT)
                    except OSError:
                        pass
    if interrupted:
        raise on_interrupt(True) from box.get("error")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ---------------------------------------------------------------------------------------------
# Results.
# ---------------------------------------------------------------------------------------------
SUMMARY_COLUMNS = ["stack", "operation", "type", "count"]
CHANGES_COLUMNS = ["stack", "operation", "type", "name"]


def mask_outputs(values: Mapping[str, Any]) -> dict[str, Any]:
    """Stack outputs as plain values, every secret replaced by ``[secret]``."""
    masked: dict[str, Any] = {}
    for name, value in values.items():
        if hasattr(value, "secret") and hasattr(value, "value"):
            masked[name] = SECRET_MASK if value.secret else value.value
        else:
            masked[name] = value
    return masked


@dataclass
class StackRun:
    """One operation on one stack: its change summary, per-resource changes and (masked) outputs."""

    operation: str
    kind: str
    stack: str                  # fully qualified name
    summary: "pd.DataFrame"     # stack, operation, type, count
    changes: "pd.DataFrame"     # stack, operation, type, name
    outputs: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""


@dataclass
class Run:
    """An operation over an environment's stacks (foundation first on up, compute first on destroy)."""

    env: str
    operation: str
    stacks: list[StackRun] = field(default_factory=list)
    applied: bool = False

    @property
    def summary(self) -> "pd.DataFrame":
        import pandas as pd

        frames = [s.summary for s in self.stacks if not s.summary.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SUMMARY_COLUMNS)

    @property
    def changes(self) -> "pd.DataFrame":
        import pandas as pd

        frames = [s.changes for s in self.stacks if not s.changes.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CHANGES_COLUMNS)

    def outputs_of(self, kind: StackKind | str) -> dict[str, Any]:
        for stack_run in self.stacks:
            if stack_run.kind == StackKind(kind).value:
                return stack_run.outputs
        return {}

    @property
    def outputs(self) -> dict[str, Any]:
        """The compute stack's outputs (masked)."""
        return self.outputs_of(StackKind.COMPUTE)

    def counts(self) -> dict[str, int]:
        """Resources per operation over all stacks, e.g. {"create": 40, "same": 2}."""
        summary = self.summary
        if summary.empty:
            return {}
        return {str(k): int(v) for k, v in summary.groupby("operation")["count"].sum().items()}


def _summary_frame(label: str, recorder: _Recorder, fallback: Mapping[Any, int] | None) -> "tuple[pd.DataFrame, pd.DataFrame]":
    import pandas as pd

    rows = [{"stack": label, **step} for step in recorder.steps.values()]
    changes = pd.DataFrame(rows, columns=CHANGES_COLUMNS)
    if not changes.empty:
        summary = (changes.groupby(["stack", "operation", "type"]).size().reset_index(name="count")
                   .sort_values(["operation", "type"], ignore_index=True))
    else:
        counts = recorder.changes_summary or {_op_name(k): int(v) for k, v in (fallback or {}).items()}
        summary = pd.DataFrame([{"stack": label, "operation": op, "type": "(all types)", "count": n}
                                for op, n in sorted(counts.items())], columns=SUMMARY_COLUMNS)
    return summary[SUMMARY_COLUMNS], changes


# ---------------------------------------------------------------------------------------------
# Operations.
# ---------------------------------------------------------------------------------------------
Echo = Callable[[str], None]
ProgressFn = Callable[[Progress], None]


def _default_echo(line: str) -> None:
    print(line, flush=True)


def _run_one(target: StackTarget, operation: Operation, *, echo: Echo | None, progress: ProgressFn | None,
             **options: Any) -> StackRun:
    """Open the stack and run one operation on it, in the caller's thread (see _off_loop)."""
    from workbook.plan import _LOCK   # Pulumi's runtime state is process-global: one program at a time

    create = operation in (Operation.PREVIEW, Operation.UP)
    opened = _open(target, operation.value, create=create, configure=operation is not Operation.OUTPUTS)
    stack, secrets = opened.stack, opened.secrets
    label = target.kind.value
    recorder = _Recorder(label, operation.value, progress)
    captured: list[str] = []

    def on_output(line: str) -> None:
        line = _scrub(line, secrets)
        captured.append(line)
        if echo:
            echo(line)

    streams = {"on_output": on_output, "on_event": recorder, "color": "never"}
    fallback: Mapping[Any, int] | None = None
    raw_outputs: Mapping[str, Any] = {}
    with _LOCK:
        try:
            if operation is Operation.PREVIEW:
                result = stack.preview(**streams)
                fallback = result.change_summary
            elif operation is Operation.UP:
                result = stack.up(**streams)
                fallback = getattr(result.summary, "resource_changes", None)
                raw_outputs = result.outputs
            elif operation is Operation.REFRESH:
                result = stack.refresh(clear_pending_creates=options.get("clear_pending_creates") or None, **streams)
                fallback = getattr(result.summary, "resource_changes", None)
                raw_outputs = stack.outputs()
            elif operation is Operation.DESTROY:
                result = stack.destroy(**streams)
                fallback = getattr(result.summary, "resource_changes", None)
            else:
                raw_outputs = stack.outputs()
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise translate_error(exc, target, operation.value, secrets, recorder.errors) from None
    if operation is not Operation.OUTPUTS:
        recorder.finish()
    summary, changes = _summary_frame(label, recorder, fallback)
    return StackRun(operation=operation.value, kind=label, stack=target.fully_qualified_name, summary=summary,
                    changes=changes, outputs=mask_outputs(raw_outputs), stdout="\n".join(captured))


def _interrupted(targets_: Sequence[StackTarget], operation: Operation) -> Callable[[bool], DeployError]:
    def build(graceful: bool) -> DeployError:
        target = targets_[0]
        names = ", ".join(t.fully_qualified_name for t in targets_)
        how = ("the Pulumi CLI was asked to stop and finished its in-flight operations"
               if graceful else "the workbook stopped waiting; the Pulumi CLI may still be running")
        return DeployInterrupted(
            f"{operation.value} of {names} was interrupted: {how}. Before the next run, reconcile the state with "
            f"`workbook refresh --env {target.env}` (add --clear-pending-creates if it reports pending creates); "
            f"if the stack stays locked, `pulumi cancel --yes --stack <name>` {_cli_context(target)} releases it.")
    return build


def _execute(env: str | Settings, operation: Operation, stack: str | StackKind | None, *,
             echo: Echo | None, progress: ProgressFn | None, order: str = "up", **options: Any) -> Run:
    chosen = targets(env, stack, order=order)
    settings = chosen[0].settings

    def work() -> Run:
        run = Run(env=settings.env, operation=operation.value)
        for target in chosen:
            run.stacks.append(_run_one(target, operation, echo=echo, progress=progress, **options))
        run.applied = operation in (Operation.UP, Operation.REFRESH, Operation.DESTROY)
        return run

    return _off_loop(work, _interrupted(chosen, operation))


def _progress_default(progress: ProgressFn | None, echo: Echo | None) -> ProgressFn | None:
    if progress is not None:
        return progress
    return _print_progress_every(10) if echo is _default_echo else None


def preview(env: str | Settings, *, stack: str | None = None, echo: Echo | None = _default_echo,
            progress: ProgressFn | None = None) -> Run:
    """Preview the environment's stacks (foundation first when standalone); nothing is changed.

    Output streams through ``echo`` (default: print) and progress through ``progress``.
    """
    return _execute(env, Operation.PREVIEW, stack, echo=echo, progress=_progress_default(progress, echo))


def up(env: str | Settings, *, stack: str | None = None, approve: bool = False,
       echo: Echo | None = _default_echo, progress: ProgressFn | None = None) -> Run:
    """Deploy the environment's stacks, foundation first when standalone.

    In prod the preview always runs first and is shown; without ``approve=True`` nothing is applied
    and ProdSafetyError (carrying the preview as ``.preview``) says how to apply.
    """
    settings = _settings(env)
    progress = _progress_default(progress, echo)
    if settings.env == PROD_ENV:
        shown = _execute(settings, Operation.PREVIEW, stack, echo=echo, progress=progress)
        if echo:
            echo(f"Preview of {settings.env}: {_describe_counts(shown.counts())}.")
        if not approve:
            names = ", ".join(s.stack for s in shown.stacks)
            raise ProdSafetyError(
                f"up in prod needs approval: the preview of {names} is above ({_describe_counts(shown.counts())}). "
                "Nothing was applied. Review it, then run again with approve=True (CLI: `workbook deploy --env prod "
                "--approve`).", preview=shown)
    return _execute(settings, Operation.UP, stack, echo=echo, progress=progress)


def refresh(env: str | Settings, *, stack: str | None = None, clear_pending_creates: bool = False,
            echo: Echo | None = _default_echo, progress: ProgressFn | None = None) -> Run:
    """Reconcile the stacks' state with what exists in AWS (the recovery step after an interrupted run)."""
    return _execute(env, Operation.REFRESH, stack, echo=echo, progress=_progress_default(progress, echo),
                    clear_pending_creates=clear_pending_creates)


def expected_destroy_confirmation(env: str | Settings, stack: str | None = None) -> str:
    """What ``confirm_destroy`` must equal: the fully qualified name(s) of the stacks to destroy."""
    return ",".join(t.fully_qualified_name for t in targets(env, stack, order="destroy"))


def check_destroy_allowed(env: str | Settings, stack: str | None = None, confirm_destroy: str | None = None) -> None:
    """Raise ProdSafetyError unless a prod destroy is confirmed with the stacks' fully qualified names."""
    chosen = targets(env, stack, order="destroy")
    settings = chosen[0].settings
    if settings.env != PROD_ENV:
        return
    if chosen[0].organization is None:
        raise ProdSafetyError(
            f"destroy in prod needs the stack's fully qualified name, and with Pulumi Cloud "
            f"({chosen[0].backend.url}) that includes your organization: set PULUMI_ORG to it and run again.")
    expected = [t.fully_qualified_name for t in chosen]
    given = [part.strip() for part in (confirm_destroy or "").split(",") if part.strip()]
    if given != expected:
        wanted = ",".join(expected)
        got = f"got {confirm_destroy!r}" if confirm_destroy else "none was given"
        raise ProdSafetyError(
            f"destroy in prod deletes every resource of {wanted} and needs confirm_destroy equal to that name "
            f"({got}). Pass confirm_destroy={wanted!r} (CLI: `workbook destroy --env prod --confirm-destroy {wanted}`).")


def destroy(env: str | Settings, *, stack: str | None = None, confirm_destroy: str | None = None,
            echo: Echo | None = _default_echo, progress: ProgressFn | None = None) -> Run:
    """Delete the stacks' resources, compute first. In prod ``confirm_destroy`` must equal the stack name."""
    check_destroy_allowed(env, stack, confirm_destroy)
    return _execute(env, Operation.DESTROY, stack, echo=echo, progress=_progress_default(progress, echo),
                    order="destroy")


def outputs(env: str | Settings, *, stack: str = "compute") -> dict[str, Any]:
    """The deployed stack's outputs, secrets masked as ``[secret]``."""
    run = _execute(env, Operation.OUTPUTS, stack, echo=None, progress=None)
    return run.stacks[0].outputs


def _describe_counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no resources"
    return ", ".join(f"{n} to {op}" if op not in ("same", "plan") else (f"{n} unchanged" if op == "same" else f"{n} planned")
                     for op, n in sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# The notebook facade.
# ---------------------------------------------------------------------------------------------
@dataclass
class Result:
    """What a notebook shows: how it was produced, the summary, the outputs and one plain sentence."""

    env: str
    operation: str
    mode: Mode
    summary: "pd.DataFrame"       # stack, operation, type, count
    resources: "pd.DataFrame"     # per resource: stack, operation, type, name
    outputs: dict[str, Any]
    message: str
    applied: bool = False
    run: Run | None = None
    plan: "Plan | None" = None

    def _repr_markdown_(self) -> str:   # Jupyter shows the sentence, not the dataclass
        return f"**{self.mode.value}** — {self.message}"

    def to_record(self) -> dict[str, Any]:
        """JSON-friendly: what a notebook records (sb.glue) and the next run diffs against."""
        return {
            "env": self.env, "operation": self.operation, "mode": self.mode.value, "message": self.message,
            "applied": self.applied, "outputs": json.loads(json.dumps(self.outputs, default=str)),
            "summary": self.summary.to_dict(orient="records"),
            "resources": self.resources.to_dict(orient="records"),
        }


def plan_summary(plan: "Plan") -> "pd.DataFrame":
    """The offline plan as a change summary: one row per stack and resource type, operation ``plan``."""
    import pandas as pd

    table = plan.table()
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary = table.groupby(["stack", "type"]).size().reset_index(name="count")
    summary.insert(1, "operation", "plan")
    return summary[SUMMARY_COLUMNS]


def deploy_or_plan(env: str | Settings, operation: str = "preview", approve: bool = False, *,
                   echo: Echo | None = _default_echo, progress: ProgressFn | None = None) -> Result:
    """Preview or deploy through the Automation API when the Pulumi CLI is installed; else the offline plan.

    ``.mode`` says which ("automation" or "offline-plan") and ``.message`` says in one sentence what
    happened, plainly saying when it is only a plan. A prod ``up`` without ``approve=True`` returns the
    preview with ``applied=False`` instead of raising.
    """
    op = Operation(operation)
    if op not in (Operation.PREVIEW, Operation.UP):
        raise ValueError(f"operation must be 'preview' or 'up', not {operation!r}")
    settings = _settings(env)
    if not cli_available():
        from workbook.plan import offline_plan

        plan = offline_plan(settings.env, settings)
        summary = plan_summary(plan)
        resources = plan.table().assign(operation="plan")[["stack", "operation", "type", "name"]]
        verb = "deployed" if op is Operation.UP else "previewed"
        message = (f"Only a plan: the Pulumi CLI is not installed, so nothing was {verb}; these {len(resources)} "
                   f"resources and their outputs are what the {settings.env} stacks would hold, computed offline "
                   f"under Pulumi's mocks (install the CLI from {INSTALL_URL} to deploy).")
        return Result(settings.env, op.value, Mode.OFFLINE_PLAN, summary, resources, dict(plan.outputs), message,
                      plan=plan)
    if op is Operation.PREVIEW:
        run = preview(settings, echo=echo, progress=progress)
        message = (f"Preview of {settings.env} against its deployed state: "
                   f"{_describe_counts(run.counts())}; nothing was changed.")
        return Result(settings.env, op.value, Mode.AUTOMATION, run.summary, run.changes, _current_outputs(settings),
                      message, run=run)
    try:
        run = up(settings, approve=approve, echo=echo, progress=progress)
    except ProdSafetyError as exc:
        shown = exc.preview or Run(env=settings.env, operation="preview")
        message = (f"Previewed prod only ({_describe_counts(shown.counts())}); nothing was applied because an up "
                   "in prod needs approve=True.")
        return Result(settings.env, op.value, Mode.AUTOMATION, shown.summary, shown.changes,
                      _current_outputs(settings), message, applied=False, run=shown)
    message = f"Deployed {settings.env}: {_describe_counts(run.counts())}."
    return Result(settings.env, op.value, Mode.AUTOMATION, run.summary, run.changes, run.outputs, message,
                  applied=True, run=run)


def _current_outputs(settings: Settings) -> dict[str, Any]:
    """The compute stack's current outputs, or {} when it has never been deployed."""
    try:
        return outputs(settings)
    except StackNotFound:
        return {}


# ---------------------------------------------------------------------------------------------
# Differences from the last run.
# ---------------------------------------------------------------------------------------------
def diff_outputs(previous: Mapping[str, Any] | None, current: Mapping[str, Any], *,
                 include_unchanged: bool = False) -> "pd.DataFrame":
    """Outputs added, removed or changed since ``previous``: columns name, change, previous, current."""
    import pandas as pd

    previous = previous or {}
    rows = []
    for name in sorted(set(previous) | set(current)):
        before, after = previous.get(name, None), current.get(name, None)
        if name not in previous:
            change = "added"
        elif name not in current:
            change = "removed"
        elif _canonical(before) != _canonical(after):
            change = "changed"
        elif include_unchanged:
            change = "unchanged"
        else:
            continue
        rows.append({"name": name, "change": change, "previous": before, "current": after})
    return pd.DataFrame(rows, columns=["name", "change", "previous", "current"])


def diff_resources(previous: Iterable[Mapping[str, Any]] | "pd.DataFrame" | None,
                   current: Iterable[Mapping[str, Any]] | "pd.DataFrame") -> "pd.DataFrame":
    """Resources added, removed or changed, keyed by type and name (and stack when both sides have it).

    Takes plan resources (``Plan.resources``: type, name, inputs[, stack]) or tables with type and name
    columns. "changed" means the inputs differ; ``changed_keys`` names the top-level inputs that did.
    """
    import pandas as pd

    before, after = _resource_index(previous), _resource_index(current)
    use_stack = all(key[0] is not None for key in (*before, *after))
    if not use_stack:
        before = {(None, *key[1:]): value for key, value in before.items()}
        after = {(None, *key[1:]): value for key, value in after.items()}
    rows = []
    for key in sorted(set(before) | set(after), key=lambda k: tuple("" if part is None else part for part in k)):
        stack, type_token, name = key
        if key not in before:
            change, keys = "added", []
        elif key not in after:
            change, keys = "removed", []
        else:
            old, new = before[key], after[key]
            if old is None or new is None:
                continue   # tables without inputs: presence is all we can compare
            keys = sorted(k for k in set(old) | set(new) if _canonical(old.get(k)) != _canonical(new.get(k)))
            if not keys:
                continue
            change = "changed"
        rows.append({"stack": stack, "type": type_token, "name": name, "change": change, "changed_keys": keys})
    frame = pd.DataFrame(rows, columns=["stack", "type", "name", "change", "changed_keys"])
    return frame if use_stack else frame.drop(columns=["stack"])


def _resource_index(resources: Any) -> dict[tuple[Any, str, str], dict[str, Any] | None]:
    if resources is None:
        return {}
    if hasattr(resources, "to_dict") and hasattr(resources, "columns"):
        resources = resources.to_dict(orient="records")
    index: dict[tuple[Any, str, str], dict[str, Any] | None] = {}
    for resource in resources:
        inputs = resource.get("inputs")
        index[(resource.get("stack"), resource["type"], resource["name"])] = dict(inputs) if isinstance(inputs, Mapping) else None
    return index


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# ---------------------------------------------------------------------------------------------
# CLI: preview, deploy, refresh, destroy, outputs.
# ---------------------------------------------------------------------------------------------
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the deploy sub-commands to the ``workbook`` CLI."""
    commands = {
        "preview": ("preview the environment's stacks through the Automation API (offline plan without the CLI)",
                    _cli_preview),
        "deploy": ("deploy (pulumi up) the environment's stacks, foundation first when standalone", _cli_deploy),
        "refresh": ("reconcile the stacks' state with AWS (recovery after an interrupted run)", _cli_refresh),
        "destroy": ("delete the stacks' resources, compute first (prod needs --confirm-destroy)", _cli_destroy),
        "outputs": ("print a deployed stack's outputs (secrets masked)", _cli_outputs),
    }
    for name, (help_text, func) in commands.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--env", required=True, help="environment: a params/<env>.yaml file")
        stack_help = ("one stack only (default: every stack of the environment)" if name != "outputs"
                      else "which stack's outputs (default: compute)")
        parser.add_argument("--stack", choices=[k.value for k in StackKind], default=None, help=stack_help)
        if name == "deploy":
            parser.add_argument("--yes", "--approve", dest="approve", action="store_true",
                                help="apply in prod after the preview (prod always previews first)")
        if name == "destroy":
            parser.add_argument("--confirm-destroy", metavar="NAME", default=None,
                                help="required in prod: the stack's fully qualified name, e.g. organization/lwb-compute/prod")
        if name == "refresh":
            parser.add_argument("--clear-pending-creates", action="store_true",
                                help="drop pending creates left by an interrupted run (check AWS first)")
        if name == "outputs":
            parser.add_argument("--format", choices=("table", "json"), default="table")
        parser.add_argument("--quiet", action="store_true", help="do not stream the Pulumi CLI's output")
        parser.set_defaults(func=func)


def _echo_of(args: argparse.Namespace) -> Echo | None:
    return None if getattr(args, "quiet", False) else _default_echo


def _fail(exc: WorkbookError) -> int:
    print(f"workbook: {exc}", file=sys.stderr)
    if isinstance(exc, (ProdSafetyError, StackChoiceError)):
        return EXIT_USAGE
    if isinstance(exc, DeployInterrupted):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def _print_summary(run: Run) -> None:
    summary = run.summary
    if summary.empty:
        print(f"{run.operation} of {run.env}: no resources")
        return
    print(summary.to_string(index=False))
    print(f"{run.operation} of {run.env}: {_describe_counts(run.counts())}")


def _cli_preview(args: argparse.Namespace) -> int:
    settings = config.load(args.env)
    try:
        targets(settings, args.stack)
        if not cli_available():
            result = deploy_or_plan(settings, "preview", echo=None)
            summary = result.summary if args.stack is None else result.summary[result.summary["stack"] == args.stack]
            print(summary.to_string(index=False))
            print(f"workbook: {result.message}", file=sys.stderr)
            return EXIT_OK
        _print_summary(preview(settings, stack=args.stack, echo=_echo_of(args)))
        return EXIT_OK
    except WorkbookError as exc:
        return _fail(exc)


def _cli_deploy(args: argparse.Namespace) -> int:
    settings = config.load(args.env)
    try:
        run = up(settings, stack=args.stack, approve=args.approve, echo=_echo_of(args))
    except ProdSafetyError as exc:
        if exc.preview is not None:
            _print_summary(exc.preview)
        return _fail(exc)
    except WorkbookError as exc:
        return _fail(exc)
    _print_summary(run)
    return EXIT_OK


def _cli_refresh(args: argparse.Namespace) -> int:
    settings = config.load(args.env)
    try:
        run = refresh(settings, stack=args.stack, clear_pending_creates=args.clear_pending_creates,
                      echo=_echo_of(args))
    except WorkbookError as exc:
        return _fail(exc)
    _print_summary(run)
    return EXIT_OK


def _cli_destroy(args: argparse.Namespace) -> int:
    settings = config.load(args.env)
    try:
        run = destroy(settings, stack=args.stack, confirm_destroy=args.confirm_destroy, echo=_echo_of(args))
    except WorkbookError as exc:
        return _fail(exc)
    _print_summary(run)
    return EXIT_OK


def _cli_outputs(args: argparse.Namespace) -> int:
    settings = config.load(args.env)
    try:
        values = outputs(settings, stack=args.stack or StackKind.COMPUTE.value)
    except WorkbookError as exc:
        return _fail(exc)
    if args.format == "json":
        json.dump(values, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        for name, value in sorted(values.items()):
            print(f"{name} = {value if isinstance(value, str) else json.dumps(value, default=str)}")
    return EXIT_OK

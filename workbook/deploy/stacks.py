"""The stacks of an environment, derived from its params: backend, passphrase, names and config.

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

The Pulumi CLI is optional: ``require_cli`` raises ``PulumiCliMissing``, saying how to get it.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit

import pulumi
from pulumi import automation as auto

from infra import compute, config, foundation
from infra.config import REPO_ROOT, Settings
from workbook.deploy.errors import (
    INSTALL_URL,
    SECRET_MASK,
    BackendError,
    DeployError,
    LocalEndpointMissing,
    PassphraseMissing,
    PulumiCliMissing,
    StackChoiceError,
    error_lines,
    operation_verb,
    result_part,
    translate_error,
)

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


def settings_of(env: str | Settings) -> Settings:
    return env if isinstance(env, Settings) else config.load(env)


def targets(env: str | Settings, stack: str | StackKind | None = None, *, order: str = "up") -> list[StackTarget]:
    """The stacks an operation touches, in order: foundation first for ``up``, compute first for ``destroy``.

    ``stack`` narrows to one (``"compute"`` or ``"foundation"``); the foundation is only part of an
    environment that deploys it standalone.
    """
    settings = settings_of(env)
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
    """The local AWS endpoint: ``AWS_ENDPOINT_URL``, which ``workbook.local.activate()`` sets.

    The commands and notebooks that deploy ``--env local`` activate the running local environment
    first, so this layer never reaches up into ``workbook.local``.
    """
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return url
    raise LocalEndpointMissing(
        "--env local deploys to the local AWS endpoint, and none is running: start it with "
        "`workbook local start` (or set AWS_ENDPOINT_URL to a running endpoint), then run again."
    )


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


def _apply_config(stack: auto.Stack, derived: Mapping[str, str]) -> None:
    """Make the stack's config exactly ``derived``: drop keys params no longer produce, rebuild structured ones."""
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
        settings = config.from_pulumi_config()
        module = compute if kind is StackKind.COMPUTE else foundation
        for name, value in module.build(settings).items():
            pulumi.export(name, value)

    program.__name__ = f"{kind.value}_program"
    return program


# Provider plugins the programs need, by Python package: installing the version that matches the SDK
# up front makes the first run fail early and clearly when it cannot be downloaded.
PROVIDER_PLUGINS = {"aws": "pulumi_aws", "random": "pulumi_random"}


def _install_plugins(stack: auto.Stack) -> None:
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
                f"{error_lines(result_part(exc, 'stderr') or str(exc))}. Check the network, or install it by hand: "
                f"`pulumi plugin install resource {plugin} {wanted}`.") from None


@dataclass
class OpenedStack:
    stack: auto.Stack
    secrets: tuple[str, ...]   # values to scrub from anything shown


def open_stack(target: StackTarget, operation: str, *, create: bool, configure: bool) -> OpenedStack:
    """Check everything that can be checked, then create or select the stack with its derived config.

    The order matters: the CLI, the passphrase and (for local) the endpoint are checked before anything
    is written, so a missing piece leaves no workspace behind.
    """
    require_cli(f"{operation_verb(operation)} {target.fully_qualified_name}")
    env_vars, passphrase = _passphrase_env(target.settings, target.backend)
    derived = stack_config(target.settings) if configure else None

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
    return OpenedStack(stack, secrets)



"""Every per-environment knob of the stack, read from ``params/<env>.yaml`` and validated.

This is the only module that reads configuration. The schema below is the single place
where a knob is defined, with its allowed range. A bad file fails with a ``ParamsError``
that names the file, the field, the value and the fix.
"""
from __future__ import annotations

import os
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infra import project, specs

# REPO_ROOT (the project folder) and PARAMS_DIR are read on use, not at import: ``workbook --help``
# works anywhere, and a missing project folder is a clear error where one is needed.


def __getattr__(name: str) -> Path:
    if name == "REPO_ROOT":
        return project.project_dir()
    if name == "PARAMS_DIR":
        return default_params_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_params_dir() -> Path:
    """``$WORKBOOK_PARAMS_DIR``, or the project folder's ``params/``."""
    override = os.environ.get("WORKBOOK_PARAMS_DIR")
    return Path(override) if override else project.project_dir() / "params"

ENVIRONMENTS = ("local", "dev", "staging", "prod")


class ParamsError(ValueError):
    """A params file is missing or invalid; the message names the file, the field and the fix."""


# ---------------------------------------------------------------------------------------------
# Schedules: EventBridge cron and rate expressions.
# ---------------------------------------------------------------------------------------------
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_CRON_FIELD_RANGES = (  # (name, min, max, names allowed)
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
    ("year", 1970, 2199, ()),
)


def validate_schedule_expression(expression: str) -> str:
    """Check an EventBridge ``cron(...)`` or ``rate(...)`` expression; raise ValueError with the reason."""
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ValueError("a rate must be at least 1")
        if (value == 1) != (not unit.endswith("s")):
            raise ValueError(f"use 'rate(1 {unit.rstrip('s')})' for one and 'rate(N {unit.rstrip('s')}s)' for more")
        return expression
    cron = _CRON.match(expression)
    if not cron:
        raise ValueError("expected 'cron(min hour day-of-month month day-of-week year)' or 'rate(N minutes)'")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"an EventBridge cron has 6 fields (min hour dom month dow year), got {len(fields)}")
    for (name, low, high, names), field in zip(_CRON_FIELD_RANGES, fields, strict=True):
        _validate_cron_field(name, field, low, high, names)
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
    return expression


def _validate_cron_field(name: str, field: str, low: int, high: int, names: tuple[str, ...]) -> None:
    if field in ("*", "?"):
        if field == "?" and name not in ("day-of-month", "day-of-week"):
            raise ValueError(f"'?' is only allowed in day-of-month or day-of-week, not {name}")
        return
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            raise ValueError(f"{name}: bad step {step!r}")
        if base in ("*",):
            continue
        if name == "day-of-month" and base in ("L", "W", "LW") or (name == "day-of-month" and base.endswith("W")):
            base = base.rstrip("W") or "1"
            if base in ("L",):
                continue
        if name == "day-of-week" and ("#" in base or base.endswith("L")):
            base = base.split("#")[0].rstrip("L") or "1"
        for bound in base.split("-"):
            if bound.upper() in names:
                continue
            if not bound.isdigit() or not low <= int(bound) <= high:
                raise ValueError(f"{name}: {bound!r} is outside {low}..{high}")


# ---------------------------------------------------------------------------------------------
# The schema.
# ---------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


class ProvisionedConcurrency(_Strict):
    """Provisioned concurrency on the ``live`` alias, scaled by Application Auto Scaling."""

    min_capacity: int = Field(ge=1, le=1000)
    max_capacity: int = Field(ge=1, le=1000)
    target_utilization: float = Field(0.7, gt=0.0, le=0.99)

    @model_validator(mode="after")
    def _min_below_max(self) -> ProvisionedConcurrency:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) must not exceed max_capacity ({self.max_capacity})")
        return self


class FunctionParams(_Strict):
    """Per-function overrides; unset fields fall back to ``infra/specs.py``."""

    memory_mb: int | None = Field(None, ge=specs.MEMORY_MIN_MB, le=specs.MEMORY_MAX_MB)
    timeout_s: int | None = Field(None, ge=1, le=specs.TIMEOUT_MAX_S)
    ephemeral_storage_mb: int = Field(512, ge=specs.EPHEMERAL_MIN_MB, le=specs.EPHEMERAL_MAX_MB)
    reserved_concurrency: int | None = Field(None, ge=0, le=10_000)
    provisioned_concurrency: ProvisionedConcurrency | None = None
    architecture: Literal["x86_64", "arm64"] | None = None


class QueueParams(_Strict):
    """An SQS queue with its dead-letter queue, and (for consumers) its event source mapping."""

    visibility_timeout_s: int = Field(ge=0, le=43_200)
    message_retention_s: int = Field(345_600, ge=60, le=1_209_600)
    dlq_retention_s: int = Field(1_209_600, ge=60, le=1_209_600)
    max_receive_count: int = Field(ge=1, le=1000)
    batch_size: int = Field(10, ge=1, le=10_000)
    batching_window_s: int = Field(0, ge=0, le=300)
    max_concurrency: int = Field(2, ge=2, le=1000)
    oldest_message_alarm_s: int = Field(300, ge=60)

    @model_validator(mode="after")
    def _batch_window(self) -> QueueParams:
        if self.batch_size > 10 and self.batching_window_s < 1:
            raise ValueError("batch_size above 10 needs batching_window_s of at least 1 (an SQS rule)")
        return self


class ScheduleParams(_Strict):
    """One EventBridge schedule rule that invokes the scheduler."""

    name: str = Field(pattern=r"^[a-z0-9-]{1,32}$")
    expression: str
    enabled: bool = True

    @field_validator("expression")
    @classmethod
    def _valid(cls, value: str) -> str:
        return validate_schedule_expression(value)


class AsyncInvokeParams(_Strict):
    """Event invoke config for asynchronously invoked functions (S3, EventBridge)."""

    maximum_retry_attempts: int = Field(2, ge=0, le=2)
    maximum_event_age_s: int = Field(3600, ge=60, le=21_600)


class EventTargetParams(_Strict):
    """Retry policy of EventBridge targets (their DLQ is created by the stack)."""

    maximum_retry_attempts: int = Field(8, ge=0, le=185)
    maximum_event_age_s: int = Field(3600, ge=60, le=86_400)


class UploadParams(_Strict):
    """Which uploads trigger the file processor."""

    prefix: str = "incoming/"
    suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".txt", ".csv", ".json", ".pdf")
    max_object_mb: int = Field(50, ge=1, le=10_240)


class AlarmParams(_Strict):
    """Thresholds of the per-function and per-queue alarms."""

    error_rate_pct: float = Field(1.0, gt=0, le=100)
    duration_p99_pct_of_timeout: float = Field(80.0, gt=0, le=100)
    throttles: int = Field(1, ge=1)
    evaluation_periods: int = Field(3, ge=1, le=100)
    period_s: int = Field(60, ge=10)


class RetryParams(_Strict):
    """Step Functions retry on Lambda service errors."""

    interval_s: int = Field(2, ge=1, le=3600)
    backoff_rate: float = Field(2.0, ge=1.0, le=10.0)
    max_attempts: int = Field(3, ge=0, le=10)
    jitter: Literal["FULL", "NONE"] = "FULL"
    max_delay_s: int = Field(60, ge=1, le=31_622_400)


class PipelineParams(_Strict):
    """dataPipeline (Step Functions): the time budget of one execution."""

    # Past it the execution ends TIMED_OUT (the ExecutionsTimedOut alarm).
    timeout_s: int = Field(3600, ge=10, le=31_536_000)


class ExtensionLayer(_Strict):
    """ARNs of the AWS Parameters and Secrets Lambda Extension layer in one region."""

    x86_64: str = Field(pattern=r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
    arm64: str = Field(pattern=r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")


class FunctionUrlParams(_Strict):
    """The api-processor's Function URL."""

    auth_type: Literal["AWS_IAM", "NONE"] = "AWS_IAM"
    cors_max_age_s: int = Field(300, ge=0, le=86_400)


class HttpApiParams(_Strict):
    """The HTTP API in front of the api-processor.

    ``authorizer_cache_ttl_s`` is how long API Gateway reuses the auth-handler's answer for the same
    Authorization header. An allowed token therefore stays usable up to this many seconds past its
    ``exp`` (plus ``jwt.leeway_s``), and a revoked key or secret takes as long to bite. 0 turns the
    cache off: every request runs the authorizer. API Gateway allows 0..3600.
    """

    authorizer_cache_ttl_s: int = Field(0, ge=0, le=3600)


class JwtParams(_Strict):
    """What the auth handler accepts."""

    issuer: str
    audience: str
    algorithms: tuple[Literal["HS256", "RS256"], ...] = ("HS256",)
    leeway_s: int = Field(30, ge=0, le=300)
    max_token_bytes: int = Field(8192, ge=256, le=65_536)
    public_key_pem: str | None = None


class StackRefs(_Strict):
    """Names of the foundation stacks read through StackReference."""

    network: str
    security: str
    storage: str
    database: str
    secrets: str


class FoundationParams(_Strict):
    """Where the compute stack's foundation comes from."""

    stacks: StackRefs
    standalone: bool = False   # deploy infra/foundation.py as its own stack first
    db_instance_class: str = "db.t4g.micro"
    db_allocated_storage_gb: int = Field(20, ge=20, le=65_536)
    db_multi_az: bool = False
    db_deletion_protection: bool = True
    vpc_cidr: str = "10.40.0.0/16"
    availability_zones: int = Field(2, ge=2, le=6)


class BackendParams(_Strict):
    """Where Pulumi keeps state, and how it encrypts secrets."""

    url: str = "file://~/.pulumi-workbook"
    secrets_provider: Literal["passphrase", "default"] = "passphrase"
    passphrase_env: str = "PULUMI_CONFIG_PASSPHRASE"


class LocalParams(_Strict):
    """Only for the embedded default (``--env local``)."""

    clock_factor: float = Field(60.0, ge=1.0, le=10_000.0)
    idle_expiry_s: float = Field(300.0, ge=1.0)
    traffic_duration_s: float = Field(60.0, ge=1.0, le=3600.0)


class WebhookParams(_Strict):
    """The notification handler's webhook client."""

    # Loopback and private targets (and plain http:// to them): the local environment's sink on
    # 127.0.0.1, and tests. Link-local (instance metadata) stays refused; prod may not set it.
    allow_private_targets: bool = False


class ReportParams(_Strict):
    """Scheduled reports."""

    retention_runs: int = Field(30, ge=1, le=10_000)
    since: str = Field("24h", pattern=r"^\d+[mhd]$")


class Params(_Strict):
    """The whole of ``params/<env>.yaml``."""

    environment: Literal["local", "dev", "staging", "prod"]
    project_name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")
    deployment_id: str = Field(pattern=r"^[a-z0-9]{2,8}$")
    aws_region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    deploy_domain: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    architecture: Literal["x86_64", "arm64"] = "arm64"
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                                2922, 3288, 3653]
    application_log_level: LogLevel = "INFO"
    system_log_level: Literal["DEBUG", "INFO", "WARN"] = "INFO"
    functions: dict[str, FunctionParams] = Field(default_factory=dict)
    task_queue: QueueParams
    notification_queue: QueueParams
    async_invoke: AsyncInvokeParams = AsyncInvokeParams()
    event_targets: EventTargetParams = EventTargetParams()
    schedules: tuple[ScheduleParams, ...] = Field(min_length=1)
    uploads: UploadParams = UploadParams()
    alarms: AlarmParams = AlarmParams()
    pipeline_retry: RetryParams = RetryParams()
    pipeline: PipelineParams = PipelineParams()
    function_url: FunctionUrlParams = FunctionUrlParams()
    http_api: HttpApiParams = HttpApiParams()
    jwt: JwtParams
    secrets_extension_layer_arns: dict[str, ExtensionLayer] = Field(default_factory=dict)
    foundation: FoundationParams
    backend: BackendParams = BackendParams()
    local: LocalParams = LocalParams()
    report: ReportParams = ReportParams()
    webhook: WebhookParams = WebhookParams()

    @field_validator("functions")
    @classmethod
    def _known_functions(cls, value: dict[str, FunctionParams]) -> dict[str, FunctionParams]:
        unknown = sorted(set(value) - set(specs.FUNCTION_KEYS))
        if unknown:
            raise ValueError(f"unknown function {unknown[0]!r}; known: {', '.join(specs.FUNCTION_KEYS)}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        # Visibility timeout >= 6 x the consuming function's timeout (AWS guidance for ESMs).
        for queue_field, consumer in (("task_queue", "data-processor"), ("notification_queue", "notification-handler")):
            queue: QueueParams = getattr(self, queue_field)
            timeout_s = self.function_timeout_s(consumer)
            needed = specs.VISIBILITY_TIMEOUT_FACTOR * timeout_s
            if queue.visibility_timeout_s < needed:
                raise _CrossFieldError(
                    f"{queue_field}.visibility_timeout_s",
                    queue.visibility_timeout_s,
                    f"must be at least {specs.VISIBILITY_TIMEOUT_FACTOR} x the {consumer} timeout "
                    f"({timeout_s} s), so at least {needed}; raise it or lower functions.{consumer}.timeout_s",
                )
        if self.region_layer_arn is None and self.environment != "local":
            raise _CrossFieldError(
                "secrets_extension_layer_arns", sorted(self.secrets_extension_layer_arns),
                f"has no entry for aws_region {self.aws_region!r}; add the AWS Parameters and Secrets "
                "Lambda Extension layer ARN for that region",
            )
        if self.webhook.allow_private_targets and self.environment == "prod":
            raise _CrossFieldError("webhook.allow_private_targets", True,
                                   "must be false in prod (loopback and private webhook targets are for the local "
                                   "environment and tests); remove it")
        if "RS256" in self.jwt.algorithms and not self.jwt.public_key_pem:
            raise _CrossFieldError("jwt.public_key_pem", None, "is required when jwt.algorithms includes RS256")
        return self

    # -- resolved views ------------------------------------------------------------------------
    def function_timeout_s(self, key: str) -> int:
        override = self.functions.get(key)
        return (override.timeout_s if override and override.timeout_s else None) or specs.spec(key).timeout_s

    @property
    def region_layer_arn(self) -> ExtensionLayer | None:
        return self.secrets_extension_layer_arns.get(self.aws_region)


class _CrossFieldError(ValueError):
    def __init__(self, field: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.field, self.value, self.message = field, value, message


# ---------------------------------------------------------------------------------------------
# Resolved settings: what the program and the workbook consume.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionSettings:
    """A function's effective settings in one environment: spec plus params overrides."""

    spec: specs.FunctionSpec
    memory_mb: int
    timeout_s: int
    architecture: str
    ephemeral_storage_mb: int
    reserved_concurrency: int | None
    provisioned_concurrency: ProvisionedConcurrency | None

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass(frozen=True)
class Settings:
    """Validated params for one environment, with the derived names and tags."""

    params: Params
    source: str

    @property
    def env(self) -> str:
        return self.params.environment

    @property
    def prefix(self) -> str:
        """Every resource name starts with project, environment and deployment id."""
        p = self.params
        return f"{p.project_name}-{p.environment}-{p.deployment_id}"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    @property
    def tags(self) -> dict[str, str]:
        p = self.params
        return {
            "Project": p.project_name,
            "Environment": p.environment,
            "DeploymentId": p.deployment_id,
            "ManagedBy": "pulumi",
        }

    @property
    def cors_origin(self) -> str:
        return f"https://{self.params.deploy_domain}"

    def function(self, key: str) -> FunctionSettings:
        spec = specs.spec(key)
        override = self.params.functions.get(key) or FunctionParams()
        return FunctionSettings(
            spec=spec,
            memory_mb=override.memory_mb or spec.memory_mb,
            timeout_s=override.timeout_s or spec.timeout_s,
            architecture=override.architecture or self.params.architecture,
            ephemeral_storage_mb=override.ephemeral_storage_mb,
            reserved_concurrency=override.reserved_concurrency,
            provisioned_concurrency=override.provisioned_concurrency,
        )

    @property
    def functions(self) -> list[FunctionSettings]:
        return [self.function(key) for key in specs.FUNCTION_KEYS]

    def function_name(self, key: str) -> str:
        return self.name(key)


# ---------------------------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------------------------
def params_path(env: str, params_dir: Path | None = None) -> Path:
    return (params_dir or default_params_dir()) / f"{env}.yaml"


def load(env: str, params_dir: Path | None = None) -> Settings:
    """Read and validate ``params/<env>.yaml``."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", env or ""):
        raise ParamsError(f"environment {env!r} is not a valid name; use one of: {', '.join(ENVIRONMENTS)}")
    path = params_path(env, params_dir)
    if env not in ENVIRONMENTS:   # the field `environment` takes these only: no other params file could validate
        raise ParamsError(f"{_rel(path)}: environment {env!r} is not one of the known environments "
                          f"({', '.join(ENVIRONMENTS)}; the params field 'environment' takes only these); "
                          "use --env with one of them")
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ParamsError(
            f"{_rel(path)}: no such params file for environment {env!r}; "
            f"known environments: {', '.join(known) or 'none'} (create {_rel(path)} from params/dev.yaml "
            f"and set environment: {env} in it)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{_rel(path)}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    settings = from_mapping(raw, source=_rel(path))
    if settings.env != env:
        raise ParamsError(
            f"{_rel(path)}: field 'environment' is {settings.env!r} but the file is for {env!r}; set environment: {env}"
        )
    return settings


def from_mapping(raw: Any, source: str = "<params>") -> Settings:
    """Validate an already-parsed params mapping (used for stack config and tests)."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    try:
        return Settings(Params.model_validate(raw), source)
    except ValidationError as exc:
        raise ParamsError(_format(source, exc)) from None


def _format(source: str, exc: ValidationError) -> str:
    lines = []
    errors = exc.errors()
    locs = [tuple(error["loc"]) for error in errors]
    for error in errors:
        loc = tuple(error["loc"])
        # A container reported as too short because its only item failed: the item's error says it.
        if any(other != loc and other[: len(loc)] == loc for other in locs):
            continue
        field = ".".join(str(part) for part in loc) or "(top level)"
        ctx = error.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, _CrossFieldError):
            lines.append(f"{source}: field '{inner.field}' = {inner.value!r} {inner.message}")
            continue
        kind = error["type"]
        value = _short(error.get("input"))
        if kind == "extra_forbidden":
            lines.append(f"{source}: unknown field '{field}'; remove it or check its spelling")
        elif kind == "missing":
            lines.append(f"{source}: field '{field}' is required")
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            lines.append(f"{source}: field '{field}' = {value!r} is out of range; {_range_hint(field, error)}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            if isinstance(error.get("input"), (dict, list, tuple)):
                lines.append(f"{source}: field '{field}': {message}")
            else:
                lines.append(f"{source}: field '{field}' = {value!r}: {message}")
    return "\n".join(lines)


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


def _range_hint(field: str, error: dict) -> str:
    bounds = _bounds_of(field)
    if bounds:
        return f"allowed range is {bounds[0]}..{bounds[1]}"
    return error["msg"].lower()


def _bounds_of(field: str) -> tuple[Any, Any] | None:
    """Find the (ge, le) of a dotted field by walking the schema."""
    model: Any = Params
    parts = field.split(".")
    for index, part in enumerate(parts):
        if model is None or not hasattr(model, "model_fields"):
            return None
        if part not in model.model_fields:
            # a dict key such as a function name
            continue
        info = model.model_fields[part]
        if index == len(parts) - 1:
            low = high = None
            for meta in info.metadata:
                low = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else low
                low = getattr(meta, "gt", None) if low is None and getattr(meta, "gt", None) is not None else low
                high = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else high
                high = getattr(meta, "lt", None) if high is None and getattr(meta, "lt", None) is not None else high
            return (low, high) if low is not None or high is not None else None
        model = _model_of(info.annotation)
    return None


def _model_of(annotation: Any) -> Any:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        for inner in typing.get_args(candidate):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(project.project_dir()))
    except ValueError:
        return str(path)


def from_pulumi_config() -> Settings:
    """Inside a Pulumi program: the stack's ``workbook:params`` object, or ``params/<env>.yaml``.

    The Automation API derives ``workbook:params`` from the params file, so the two never drift.
    A user running ``pulumi up`` by hand only sets ``workbook:env`` (default: the stack name).
    """
    import pulumi  # noqa: PLC0415 - only a Pulumi program needs it; the CLI loads params without Pulumi (0.2 s)

    cfg = pulumi.Config("workbook")
    raw = cfg.get_object("params")
    if raw is not None:
        settings = from_mapping(raw, source=f"stack config workbook:params ({pulumi.get_stack()})")
    else:
        settings = load(cfg.get("env") or pulumi.get_stack())
    provider_region = pulumi.Config("aws").get("region")
    if provider_region and provider_region != settings.params.aws_region:
        raise ParamsError(
            f"{settings.source}: field 'aws_region' is {settings.params.aws_region!r} but the stack's aws:region "
            f"is {provider_region!r}; run `pulumi config set aws:region {settings.params.aws_region}`"
        )
    if not provider_region:
        raise ParamsError(
            f"stack {pulumi.get_stack()!r} has no aws:region; run "
            f"`pulumi config set aws:region {settings.params.aws_region}` (from {settings.source})"
        )
    return settings

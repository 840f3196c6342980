"""The six functions of the compute stack: one table, the single source of their shape.

Memory and timeout here are the optimised reference sizes (what prod runs). An
environment may override them in ``params/<env>.yaml`` under ``functions.<key>``;
``infra.config.Settings.function(key)`` resolves the two into the effective values.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: The Lambda runtime of every function and of the layer (what the local sandbox imitates too).
RUNTIME = "python3.12"


class Trigger(str, Enum):
    """How a function is invoked; decides its event source wiring and its IAM."""

    HTTP_API = "http-api"            # API Gateway HTTP API route + Function URL
    SQS = "sqs"                      # event source mapping on the task queue
    S3 = "s3"                        # ObjectCreated notifications (asynchronous)
    SCHEDULE = "schedule"            # EventBridge schedule rules (asynchronous)
    SNS_VIA_SQS = "sns-via-sqs"      # topic -> notification queue -> event source mapping
    AUTHORIZER = "authorizer"        # HTTP API Lambda authorizer


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the stack."""

    key: str
    description: str
    memory_mb: int
    timeout_s: int
    trigger: Trigger
    in_vpc: bool = False
    needs_database: bool = False
    critical: bool = False            # gets reserved concurrency (and provisioned concurrency in prod)

    @property
    def module(self) -> str:
        """The handler module name in ``handlers/``."""
        return self.key.replace("-", "_")

    @property
    def handler(self) -> str:
        """The Lambda ``handler`` setting."""
        return f"{self.module}.handler"

    @property
    def camel(self) -> str:
        """``api-processor`` -> ``apiProcessor`` (used in stack output names)."""
        head, *rest = self.key.split("-")
        return head + "".join(part.title() for part in rest)

    @property
    def is_async(self) -> bool:
        """Invoked asynchronously by S3, EventBridge or SNS; gets an event invoke config and a failure DLQ.

        The notification handler normally reads the topic through its queue, but it also accepts
        direct SNS deliveries, which SNS makes asynchronously; those get the same retries and
        on-failure destination.
        """
        return self.trigger in (Trigger.S3, Trigger.SCHEDULE, Trigger.SNS_VIA_SQS)


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("api-processor", "JSON API over PostgreSQL (HTTP API + Function URL)",
                 512, 30, Trigger.HTTP_API, in_vpc=True, needs_database=True, critical=True),
    FunctionSpec("data-processor", "SQS batch consumer with partial-batch responses",
                 1024, 300, Trigger.SQS, in_vpc=True, needs_database=True, critical=True),
    FunctionSpec("file-processor", "S3 upload processing: images and documents",
                 2048, 300, Trigger.S3),
    FunctionSpec("scheduler", "Finds due work and enqueues tasks on a schedule",
                 512, 600, Trigger.SCHEDULE, in_vpc=True, needs_database=True),
    FunctionSpec("notification-handler", "Delivers notifications to the external webhook",
                 256, 60, Trigger.SNS_VIA_SQS),
    FunctionSpec("auth-handler", "JWT Lambda authorizer for the HTTP API",
                 256, 30, Trigger.AUTHORIZER, critical=True),
)

BY_KEY: dict[str, FunctionSpec] = {spec.key: spec for spec in FUNCTIONS}
FUNCTION_KEYS: tuple[str, ...] = tuple(BY_KEY)

# Lambda's hard limits, used by the params schema.
MEMORY_MIN_MB = 128
MEMORY_MAX_MB = 10_240
# Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB, up to 6 vCPUs at 10,240 MB.
MB_PER_VCPU = 1769
MAX_VCPUS = 6
TIMEOUT_MAX_S = 900
EPHEMERAL_MIN_MB = 512
EPHEMERAL_MAX_MB = 10_240
# AWS guidance: an SQS queue's visibility timeout is at least 6x its consumer's timeout.
VISIBILITY_TIMEOUT_FACTOR = 6


def vcpus_for(memory_mb: float) -> float:
    """Lambda's CPU share for a memory size, in vCPUs.

    In proportion up to 1,769 MB (one vCPU); above, linear between that and the documented six
    vCPUs at 10,240 MB (plain proportion would give 5.79 there).
    """
    if memory_mb <= MB_PER_VCPU:
        return memory_mb / MB_PER_VCPU
    extra = (memory_mb - MB_PER_VCPU) * (MAX_VCPUS - 1.0) / (MEMORY_MAX_MB - MB_PER_VCPU)
    return min(1.0 + extra, float(MAX_VCPUS))


def spec(key: str) -> FunctionSpec:
    """The spec for a function key, with a clear error for an unknown one."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown function {key!r}; known: {', '.join(FUNCTION_KEYS)}") from None

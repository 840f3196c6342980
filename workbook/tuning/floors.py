"""The floors and ceilings a recommendation must respect, derived from the stack itself (pure).

Nothing here is a second copy of a setting: the downstream budgets come from the handlers' own
``handlers/common/budgets.py`` (the constants their clients are built from, loaded here by path),
the safety margin from ``infra.environment``, batch sizes and windows from params, Lambda's and
API Gateway's limits from ``infra.specs``, and botocore's retry backoff from botocore itself.

Timeout floor, the largest of:

* **downstream**: the longest retry budget of one dependency the function calls (one failing
  dependency at a time), plus the handler's safety margin (``SAFETY_MARGIN_MS``), so a timeout
  never cuts a retry the code was written to make:

  - AWS SDK: attempts x (connect + read timeout) + botocore's largest backoff between attempts;
  - database: two attempts (``common.db`` retries once on a fresh connection) x (connect + statement),
    each bounded by pg8000's socket timeout;
  - webhook: attempts x per-attempt timeout + the full-jitter backoff's largest sleeps;
  - secrets extension: one call's timeout;
* **batch** (SQS consumers): batch size x the per-record p99 (an invocation's p99 bounds a
  record's), plus the batching window, so the visibility-timeout rule (>= 6 x timeout) also
  covers the time messages wait in the window;
* **worst-case input** (where tuning measured it): the slowest worst-case probe
  (``workbook.tuning.probes``) at the recommended memory, plus the timeout headroom.

Timeout ceiling: the trigger's own limit (API Gateway's 30 s integration timeout for the HTTP API
and its authorizer), else Lambda's 900 s.

Memory floor: the peak Max Memory Used (in the window, and on the worst-case input the function
accepts, the probes power tuning measures at the largest size) plus ``MEMORY_HEADROOM_PCT``.
"""
from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from types import ModuleType

from botocore.config import Config as BotocoreConfig
from botocore.retries.standard import ExponentialBackoff

from infra import specs
from infra.config import REPO_ROOT, Settings
from infra.environment import safety_margin_ms
from workbook.tuning.defaults import MEMORY_HEADROOM_PCT, TIMEOUT_HEADROOM_PCT, TIMEOUT_MIN_S

__all__ = ["Dependency", "Floor", "TimeoutFloor", "budgets", "dependency_budget_s", "dependency_budgets", "memory_floor",
           "sdk_total_attempts",
           "sdk_backoff_s", "timeout_ceiling", "timeout_floor", "webhook_backoff_s"]

#: The handlers' budgets module: the one home of their timeouts, attempts and backoff.
BUDGETS_PATH = REPO_ROOT / "handlers" / "common" / "budgets.py"


class Dependency(str, Enum):
    """A kind of downstream call a function makes (the names of ``budgets.DEPENDENCIES``)."""

    AWS_SDK = "aws-sdk"
    DATABASE = "database"
    WEBHOOK = "webhook"
    SECRETS_EXTENSION = "secrets-extension"
    SQS_SEND_BATCH = "sqs-send-batch"


def load_handler_module(name: str, path) -> ModuleType:
    """A module of ``handlers/common/`` loaded by path (the workbook does not put handlers/ on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def budgets() -> ModuleType:
    """``handlers/common/budgets.py``: the retry budgets the handlers declare."""
    return load_handler_module("workbook_handler_budgets", BUDGETS_PATH)

# Why a function's timeout is capped: its trigger's own limit.
_TIMEOUT_CAPS_S = {
    specs.Trigger.HTTP_API: (30, "API Gateway HTTP API integrations time out at 30 s"),
    specs.Trigger.AUTHORIZER: (30, "an HTTP API authorizer must answer within the 30 s integration limit"),
}
_QUEUE_OF_TRIGGER = {specs.Trigger.SQS: "task_queue", specs.Trigger.SNS_VIA_SQS: "notification_queue"}
#: Memory sizes are rounded up to this step, in MB.
MEMORY_STEP_MB = 64


@dataclass(frozen=True)
class Floor:
    """One lower limit: its value (seconds or MB) and where it comes from."""

    value: float
    reason: str
    kind: str = ""

    def describe(self, unit: str) -> str:
        value = f"{self.value:,.0f}" if self.value >= 10 else f"{self.value:.1f}".rstrip("0").rstrip(".")
        return f"{value} {unit}: {self.reason}"


@dataclass(frozen=True)
class TimeoutFloor:
    """The floor and ceiling of a function's timeout, with every component for the reader."""

    seconds: int
    binding: Floor
    components: tuple[Floor, ...] = field(default_factory=tuple)
    ceiling_s: int = specs.TIMEOUT_MAX_S
    ceiling_reason: str = "Lambda's 900 s maximum"

    @property
    def above_ceiling(self) -> bool:
        return self.seconds > self.ceiling_s

    def describe(self) -> str:
        return f"{self.seconds} s ({self.binding.kind}: {self.binding.reason})"


def sdk_backoff_s(attempts: int) -> float:
    """botocore's largest total sleep between ``attempts`` attempts in standard retry mode.

    Read from botocore's ``ExponentialBackoff`` (``rand * min(base_scale * 2**i, max_backoff)``),
    with the throttling base scale, the larger one; an ``x-amz-retry-after`` header can add up to
    5 s more per retry, which is left out (services send it rarely).
    """
    scale = float(getattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG", {}).get("throttling_base_scale", 1.0))
    base = float(getattr(ExponentialBackoff, "_BASE", 2))
    cap = float(getattr(ExponentialBackoff, "_MAX_BACKOFF", 20))
    return sum(min(scale * base ** i, cap) for i in range(max(int(attempts) - 1, 0)))


def sdk_total_attempts() -> int:
    """The attempts a handler's boto3 call makes in all: botocore's own reading of ``retries.max_attempts``."""
    config = BotocoreConfig(retries={"max_attempts": int(budgets().SDK_MAX_RETRIES), "mode": "standard"})
    return int(config.retries.get("total_max_attempts", int(budgets().SDK_MAX_RETRIES) + 1))


def webhook_backoff_s(attempts: int, base_s: float, cap_s: float) -> float:
    """``common.httpclient.Backoff``'s largest total sleep: ``min(cap, base * 2**i)`` before each retry ``i``."""
    return sum(min(cap_s, base_s * 2 ** i) for i in range(max(int(attempts) - 1, 0)))


def dependency_budget_s(dependency: Dependency | str) -> tuple[float, str]:
    """The worst-case time one call to ``dependency`` may take before the handler gives up, and how."""
    b = budgets()
    dependency = Dependency(dependency)
    if dependency is Dependency.AWS_SDK:
        attempts = sdk_total_attempts()
        backoff = sdk_backoff_s(attempts)
        total = attempts * (b.SDK_CONNECT_TIMEOUT_S + b.SDK_READ_TIMEOUT_S) + backoff
        return total, (f"AWS SDK call: {attempts} attempts x ({b.SDK_CONNECT_TIMEOUT_S:g} s connect + "
                       f"{b.SDK_READ_TIMEOUT_S:g} s read) + {backoff:g} s backoff")
    if dependency is Dependency.SQS_SEND_BATCH:
        call_s, _ = dependency_budget_s(Dependency.AWS_SDK)
        attempts = int(b.SQS_SEND_ATTEMPTS)
        backoff = webhook_backoff_s(attempts, b.SQS_SEND_BACKOFF_BASE_S, b.SQS_SEND_BACKOFF_CAP_S)
        return attempts * call_s + backoff, (f"SendMessageBatch resent: {attempts} calls x {call_s:g} s (each an "
                                             f"AWS SDK call with its retries) + {backoff:g} s backoff")
    if dependency is Dependency.DATABASE:
        attempts = int(b.DB_STATEMENT_ATTEMPTS)
        total = attempts * 2 * b.DB_TIMEOUT_S
        return total, (f"PostgreSQL statement: {attempts} attempts x ({b.DB_TIMEOUT_S:g} s connect + "
                       f"{b.DB_TIMEOUT_S:g} s statement)")
    if dependency is Dependency.WEBHOOK:
        attempts = int(b.HTTP_MAX_ATTEMPTS)
        backoff = webhook_backoff_s(attempts, b.HTTP_BACKOFF_BASE_S, b.HTTP_BACKOFF_CAP_S)
        total = attempts * b.HTTP_TIMEOUT_S + backoff
        return total, f"webhook call: {attempts} attempts x {b.HTTP_TIMEOUT_S:g} s + {backoff:g} s backoff"
    total = float(b.SECRETS_EXTENSION_TIMEOUT_S)
    return total, f"secrets extension call: {total:g} s"


def dependency_budgets(key: str) -> list[tuple[Dependency, float, str]]:
    """Each dependency function ``key`` calls, with its worst-case budget in seconds and how it adds up."""
    return [(Dependency(d), *dependency_budget_s(d)) for d in budgets().DEPENDENCIES[specs.spec(key).key]]


def timeout_ceiling(key: str) -> tuple[int, str]:
    """The trigger's limit on function ``key``'s timeout, and why."""
    return _TIMEOUT_CAPS_S.get(specs.spec(key).trigger, (specs.TIMEOUT_MAX_S, "Lambda's 900 s maximum"))


def queue_of(key: str) -> str | None:
    """The params queue whose event source mapping invokes ``key`` (None when it is not an SQS consumer)."""
    return _QUEUE_OF_TRIGGER.get(specs.spec(key).trigger)


def timeout_floor(settings: Settings, key: str, *, per_record_p99_ms: float | None = None,
                  worst_case_ms: float | None = None, worst_case_memory_mb: int | None = None, worst_case: str = "",
                  headroom_pct: float = TIMEOUT_HEADROOM_PCT) -> TimeoutFloor:
    """The smallest timeout function ``key`` may have, the component that binds, and its ceiling."""
    components: list[Floor] = []
    calls = dependency_budgets(key)
    if calls:
        _, worst_s, how = max(calls, key=lambda item: item[1])
        margin_s = safety_margin_ms(worst_s + 0.5) / 1000.0
        components.append(Floor(worst_s + margin_s, f"{how}, + {margin_s:g} s safety margin", "downstream"))
    queue_name = queue_of(key)
    if queue_name and per_record_p99_ms is not None and per_record_p99_ms == per_record_p99_ms:
        queue = getattr(settings.params, queue_name)
        seconds = queue.batch_size * per_record_p99_ms / 1000.0 + queue.batching_window_s
        components.append(Floor(seconds, f"batch of {queue.batch_size} x per-record p99 {per_record_p99_ms:,.0f} ms "
                                         f"+ {queue.batching_window_s} s batching window ({queue_name})", "batch"))
    if worst_case_ms is not None and worst_case_ms == worst_case_ms:
        seconds = worst_case_ms * (1 + headroom_pct / 100.0) / 1000.0
        at = f" at {worst_case_memory_mb} MB" if worst_case_memory_mb else ""
        components.append(Floor(seconds, f"the worst-case input {worst_case or '(unnamed)'} took {worst_case_ms:,.0f} "
                                         f"ms{at} + {headroom_pct:.0f}% headroom", "worst-case input"))
    if not components:
        components.append(Floor(float(TIMEOUT_MIN_S), "the workbook's shortest timeout", "minimum"))
    binding = max(components, key=lambda f: f.value)
    ceiling, why = timeout_ceiling(key)
    seconds = max(int(math.ceil(binding.value - 1e-9)), TIMEOUT_MIN_S)
    return TimeoutFloor(seconds, binding, tuple(components), ceiling, why)


def memory_floor(peak_mb: float | None, *, probe_peak_mb: float | None = None, probe: str = "",
                 invocations: int = 0, headroom_pct: float = MEMORY_HEADROOM_PCT,
                 oom_at_mb: Sequence[int] = ()) -> Floor:
    """The smallest memory: the larger peak (the invocations', the worst-case probe's) + ``headroom_pct``, in 64 MB steps.

    ``probe`` names the worst-case input whose peak is ``probe_peak_mb`` (the reason names it when it
    binds). Sizes where an invocation ran out of memory (``oom_at_mb``) raise the floor above them.
    """
    peaks = [(p, w) for p, w in ((peak_mb, f"peak {peak_mb or 0:,.0f} MB over {invocations:,} invocations"),
                                  (probe_peak_mb, f"peak {probe_peak_mb or 0:,.0f} MB on the worst-case input "
                                                  f"{probe or '(unnamed)'}")) if p is not None and p == p]
    if not peaks and not oom_at_mb:
        return Floor(float(specs.MEMORY_MIN_MB), "no Max Memory Used measured: Lambda's minimum", "memory")
    value, reason = float(specs.MEMORY_MIN_MB), ""
    if peaks:
        peak, why = max(peaks, key=lambda item: item[0])
        value = peak * (1 + headroom_pct / 100.0)
        reason = f"{why} + {headroom_pct:.0f}% headroom"
    if oom_at_mb:
        above = max(oom_at_mb) + 1
        if above > value:
            value = above
            reason = f"out of memory at {max(oom_at_mb)} MB"
    rounded = min(max(math.ceil(value / MEMORY_STEP_MB) * MEMORY_STEP_MB, specs.MEMORY_MIN_MB), specs.MEMORY_MAX_MB)
    if value > specs.MEMORY_MAX_MB:
        reason += f"; needs {value:,.0f} MB, above Lambda's {specs.MEMORY_MAX_MB:,} MB limit"
    return Floor(float(rounded), reason, "memory")

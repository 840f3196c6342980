"""The Logs Insights queries of the aggregate route, in one place (pure: strings in, strings out).

Lambda writes its REPORT in one of two log formats, and Logs Insights sees each differently:

* text: ``REPORT RequestId: ...\\tDuration: 12.34 ms\\t...``; Insights discovers ``@type`` (``"REPORT"``),
  ``@duration``, ``@billedDuration``, ``@initDuration`` (cold starts only) in ms, and ``@memorySize``
  and ``@maxMemoryUsed`` in bytes (10^6 per MB, as Lambda's MB); ``Status: timeout`` /
  ``Status: error`` and ``Error Type: Runtime.OutOfMemory`` stay in ``@message``;
* JSON (``logFormat: JSON``, what ``infra`` deploys): a ``{"type": "platform.report", "record": {...}}``
  record, which Insights flattens to ``type``, ``record.status``, ``record.errorType`` and
  ``record.metrics.durationMs``, ``billedDurationMs``, ``memorySizeMB``, ``maxMemoryUsedMB``,
  ``initDurationMs``, and on a SnapStart restore ``restoreDurationMs`` and ``billedRestoreDurationMs``.

A SnapStart restore's text REPORT line carries ``Restore Duration: 470.07 ms`` and ``Billed Restore Duration:
133 ms`` (and no Init Duration), which Insights does not discover: the text query parses them from
``@message``.

Each query first maps its format's fields onto one set of names (``duration_ms``, ``billed_ms``,
``memory_mb``, ``used_mb``, ``init_ms``, ...), so both formats give rows of the same fields. The
function is ``@log`` (``<account>:/aws/lambda/<name>``) and the version is read from ``@logStream``
(``2024/01/01/[$LATEST]abc`` or ``[7]``), as ``workbook.telemetry.reports`` reads it.

Syntax: AWS's query syntax reference (``stats`` with ``count``, ``sum``, ``max``, ``pct``; ``by``
with ``bin(5m)``; ``parse`` with a named capture group; ``strcontains``, ``ceil``, ``greatest``,
``least``; ``sort ... desc | limit``) and its Lambda sample queries (``filter @type = "REPORT"``,
``sum(strcontains(@message, "Init Duration"))``, ``@memorySize / 1000 / 1000``). At most 50 log
groups go in one query and a query returns at most 10,000 rows.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "BIN",
    "DURATION_PERCENTILES",
    "INIT_PERCENTILES",
    "RESTORE_PERCENTILES",
    "INSIGHTS_ROW_LIMIT",
    "MAX_LOG_GROUPS_PER_QUERY",
    "STATS_FIELDS",
    "LogFormat",
    "pct_field",
    "bucket_query",
    "histogram_query",
    "longer_query",
    "stats_query",
    "top_durations_query",
]

#: Logs Insights returns at most this many rows per query.
INSIGHTS_ROW_LIMIT = 10_000
#: Logs Insights queries at most this many log groups at once.
MAX_LOG_GROUPS_PER_QUERY = 50
#: The time bin of the aggregate route's per-bin rows.
BIN = "5m"
#: Duration percentiles computed server-side (p99.9 is written 99.9): the ones reports show, and p10, p25, p75
#: and p95 besides, so that percentiles merged across groups (``workbook.telemetry.aggregate.merge_percentiles``)
#: follow each group's distribution closely.
DURATION_PERCENTILES: tuple[float, ...] = (10, 25, 50, 75, 90, 95, 99, 99.9)
#: INIT Duration percentiles, as ``workbook.analysis.coldstart.summary`` reports them.
INIT_PERCENTILES: tuple[float, ...] = (50, 95, 99)
#: SnapStart Restore Duration percentiles, as ``workbook.analysis.coldstart.summary`` reports them.
RESTORE_PERCENTILES: tuple[float, ...] = (50, 95, 99)


class LogFormat(str, Enum):
    """Lambda's two log formats (the ``LoggingConfig.LogFormat`` values)."""

    TEXT = "Text"
    JSON = "JSON"


@dataclass(frozen=True)
class _Fields:
    """One format's REPORT fields as Logs Insights names them."""

    report: str            # the filter that keeps REPORT records only
    success: str           # the filter that keeps successful invocations only
    duration: str
    billed: str
    memory_mb: str
    used_mb: str
    init: str
    not_ok: str            # 1 for a failed invocation (any status but success), else 0
    timeout: str           # 1 for a timeout
    oom: str               # 1 for an out-of-memory error
    restore: str           # SnapStart's Restore Duration (ms)
    billed_restore: str    # SnapStart's Billed Restore Duration (ms)
    parse: str = ""        # commands that read fields Insights does not discover


_FORMATS = {
    LogFormat.TEXT: _Fields(
        report='@type = "REPORT"',
        success='@type = "REPORT" and @message not like /Status: /',
        duration="@duration",
        billed="@billedDuration",
        memory_mb="@memorySize / 1000000",
        used_mb="@maxMemoryUsed / 1000000",
        init="@initDuration",
        not_ok='strcontains(@message, "Status: ")',
        timeout='strcontains(@message, "Status: timeout")',
        oom='strcontains(@message, "Runtime.OutOfMemory")',
        # Insights discovers neither SnapStart field: parsed from the line, as Lambda's SnapStart monitoring
        # page's sample query does (the first "Restore Duration" is the restore's: the billed one follows it)
        restore="restore_text",
        billed_restore="billed_restore_text",
        parse=("| parse @message /Restore Duration: (?<restore_text>[0-9.]+) ms/\n"
               "| parse @message /Billed Restore Duration: (?<billed_restore_text>[0-9.]+) ms/\n"),
    ),
    LogFormat.JSON: _Fields(
        report='type = "platform.report"',
        success='type = "platform.report" and record.status = "success"',
        duration="record.metrics.durationMs",
        billed="record.metrics.billedDurationMs",
        memory_mb="record.metrics.memorySizeMB",
        used_mb="record.metrics.maxMemoryUsedMB",
        init="record.metrics.initDurationMs",
        not_ok='1 - strcontains(record.status, "success")',
        timeout='strcontains(record.status, "timeout")',
        oom='strcontains(record.errorType, "OutOfMemory")',
        restore="record.metrics.restoreDurationMs",
        billed_restore="record.metrics.billedRestoreDurationMs",
    ),
}

#: The version in a log stream's name: ``2024/01/01/[$LATEST]abc`` or ``2024/01/01/[7]abc``.
_VERSION_PARSE = r"parse @logStream /\[(?<version>[^\]]*)\]/"


def pct_field(prefix: str, percent: float) -> str:
    """The result field of a percentile: ``duration_p99``, ``duration_p99_9``."""
    text = f"{percent:g}".replace(".", "_")
    return f"{prefix}_p{text}"


def _group_by(binned: bool) -> str:
    # The window's rows are per function and version only, so their percentiles are over the whole
    # window of a version, whatever its memory changes; the bins keep the memory size (for cost).
    return f"@log, version, memory_mb, bin({BIN})" if binned else "@log, version"


def stats_query(log_format: LogFormat | str, *, binned: bool = True) -> str:
    """Counts, minima, percentiles, maxima, sums and peaks per function and version (and memory size and ``BIN``
    when ``binned``).

    Result fields: ``@log``, ``version``, ``memory_mb`` and ``bin(5m)`` (binned only), and ``STATS_FIELDS``.
    """
    f = _FORMATS[LogFormat(log_format)]
    duration_pcts = ", ".join(f"pct(duration_ms, {p:g}) as {pct_field('duration', p)}" for p in DURATION_PERCENTILES)
    init_pcts = ", ".join(f"pct(init_ms, {p:g}) as {pct_field('init', p)}" for p in INIT_PERCENTILES)
    restore_pcts = ", ".join(f"pct(restore_ms, {p:g}) as {pct_field('restore', p)}" for p in RESTORE_PERCENTILES)
    return (
        f"filter {f.report}\n"
        f"| {_VERSION_PARSE}\n"
        f"{f.parse}"
        f"| fields {f.duration} as duration_ms, {f.billed} as billed_ms, {f.memory_mb} as memory_mb, "
        f"{f.used_mb} as used_mb, {f.init} as init_ms, {f.restore} as restore_ms, "
        f"{f.billed_restore} as billed_restore_ms, {f.not_ok} as not_ok, {f.timeout} as is_timeout, "
        f"{f.oom} as is_oom, "
        # 1 where Billed Duration leaves INIT out (billed < ceil(duration + init)), as cost_from_reports tests it
        f"least(1, greatest(0, ceil({f.duration} + {f.init}) - {f.billed})) as init_unbilled, "
        # and where it leaves the Billed Restore Duration out (billed < ceil(duration + billed restore))
        f"least(1, greatest(0, ceil({f.duration} + {f.billed_restore}) - {f.billed})) as restore_unbilled\n"
        "| stats count(*) as invocations, sum(not_ok) as failed, sum(is_timeout) as timeouts, "
        "sum(is_oom) as out_of_memory, count(init_ms) as cold_starts, "
        f"min(duration_ms) as duration_min, {duration_pcts}, max(duration_ms) as duration_max, "
        # the longest successful duration: a failed invocation counts as 0 ms here
        "max(duration_ms * (1 - not_ok)) as ok_duration_max, "
        "sum(duration_ms) as duration_sum, "
        f"min(init_ms) as init_min, {init_pcts}, sum(init_ms) as init_sum, "
        "sum(ceil(init_ms) * init_unbilled) as init_unbilled_ms, "
        f"count(restore_ms) as restores, min(restore_ms) as restore_min, {restore_pcts}, "
        "sum(restore_ms) as restore_sum, sum(billed_restore_ms * restore_unbilled) as restore_unbilled_ms, "
        "sum(billed_ms) as billed_sum, max(used_mb) as used_max, pct(used_mb, 99) as used_p99 "
        f"by {_group_by(binned)}"
    )


#: The aggregate fields every stats query returns, in order (besides the group fields).
STATS_FIELDS: tuple[str, ...] = (
    "invocations", "failed", "timeouts", "out_of_memory", "cold_starts",
    "duration_min", *(pct_field("duration", p) for p in DURATION_PERCENTILES), "duration_max", "ok_duration_max",
    "duration_sum",
    "init_min", *(pct_field("init", p) for p in INIT_PERCENTILES), "init_sum", "init_unbilled_ms",
    "restores", "restore_min", *(pct_field("restore", p) for p in RESTORE_PERCENTILES), "restore_sum",
    "restore_unbilled_ms",
    "billed_sum", "used_max", "used_p99",
)


def top_durations_query(log_format: LogFormat | str, limit: int) -> str:
    """The ``limit`` longest successful durations of one log group, longest first (the timeout bound's order statistics).

    Result fields: ``duration_ms``, ``version``. One log group a query: ``limit`` is over the whole query.
    """
    if not 1 <= int(limit) <= INSIGHTS_ROW_LIMIT:
        raise ValueError(f"limit {limit} must be between 1 and {INSIGHTS_ROW_LIMIT:,} (Logs Insights' row limit)")
    f = _FORMATS[LogFormat(log_format)]
    return (
        f"filter {f.success}\n"
        f"| {_VERSION_PARSE}\n"
        f"| fields {f.duration} as duration_ms, version\n"
        "| sort duration_ms desc\n"
        f"| limit {int(limit)}"
    )


def _range(f: _Fields, low_ms: float | None, high_ms: float | None) -> str:
    parts = ([f" and {f.duration} >= {low_ms!r}"] if low_ms is not None else []) + (
        [f" and {f.duration} < {high_ms!r}"] if high_ms is not None else [])
    return "".join(parts)


def histogram_query(log_format: LogFormat | str, width_ms: float, low_ms: float | None = None,
                    high_ms: float | None = None) -> str:
    """Successful invocations counted per version and duration bucket ``floor(duration / width_ms)``, in [low, high).

    Result fields: ``version``, ``bucket``, ``n``. A power-of-two ``width_ms`` divides exactly, so a
    bucket's edges (``bucket * width_ms``) are the same numbers here and in Logs Insights.
    """
    f = _FORMATS[LogFormat(log_format)]
    return (
        f"filter {f.success}{_range(f, low_ms, high_ms)}\n"
        f"| {_VERSION_PARSE}\n"
        f"| fields floor({f.duration} / {float(width_ms)!r}) as bucket\n"
        "| stats count(*) as n by version, bucket"
    )


def bucket_query(log_format: LogFormat | str, low_ms: float, high_ms: float, limit: int) -> str:
    """The successful durations in [low_ms, high_ms), longest first (one bucket of ``histogram_query``)."""
    if not 1 <= int(limit) <= INSIGHTS_ROW_LIMIT:
        raise ValueError(f"limit {limit} must be between 1 and {INSIGHTS_ROW_LIMIT:,} (Logs Insights' row limit)")
    f = _FORMATS[LogFormat(log_format)]
    return (
        f"filter {f.success}{_range(f, low_ms, high_ms)}\n"
        f"| {_VERSION_PARSE}\n"
        f"| fields {f.duration} as duration_ms, version\n"
        "| sort duration_ms desc\n"
        f"| limit {int(limit)}"
    )


def longer_query(log_format: LogFormat | str, threshold_ms: float) -> str:
    """Invocations (any status) that ran longer than ``threshold_ms``, counted per version (the backtest's cut).

    Result fields: ``version``, ``longer``.
    """
    f = _FORMATS[LogFormat(log_format)]
    return (
        f"filter {f.report} and {f.duration} > {float(threshold_ms)!r}\n"
        f"| {_VERSION_PARSE}\n"
        "| stats count(*) as longer by version"
    )


def chunks(groups: Sequence[str], size: int = MAX_LOG_GROUPS_PER_QUERY) -> list[list[str]]:
    """Log groups in lists of at most ``size`` (Logs Insights' limit per query)."""
    if size < 1 or size > MAX_LOG_GROUPS_PER_QUERY:
        raise ValueError(f"a query takes 1 to {MAX_LOG_GROUPS_PER_QUERY} log groups, not {size}")
    return [list(groups[i:i + size]) for i in range(0, len(groups), size)]

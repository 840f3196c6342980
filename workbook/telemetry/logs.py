"""REPORT lines from CloudWatch Logs, for functions over a time range.

On AWS ``load_reports`` uses Logs Insights (splitting the time range to stay under Insights'
10,000-row limit); on the local endpoint, and whenever Insights has nothing useful to say, it
uses ``FilterLogEvents``, paginated. The path taken is in ``df.attrs["source"]``.

Power tuning runs on versions of its own (``RAM<mb>`` aliases on AWS, marked versions in the local
sandbox), so its REPORT rows carry ``version`` N where traffic runs on ``$LATEST`` (or on the
``live`` alias's version). ``load_for_env`` keeps the traffic only, by default: health, cold starts,
cost and projections never count tuning's invocations; ``invocations="tuning"`` gives the tuning's own.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from infra import specs
from infra.config import Settings
from workbook import aws
from workbook.errors import WorkbookError
from workbook.telemetry.insights_queries import INSIGHTS_ROW_LIMIT, MAX_LOG_GROUPS_PER_QUERY
from workbook.telemetry.notes import note_once
from workbook.telemetry.reports import parse_reports
from workbook.telemetry.route import Route, RouteChoice, local_choice
from workbook.telemetry.timestamps import epoch_ms as _epoch_ms

__all__ = [
    "LogsError",
    "load_for_env",
    "load_reports",
    "load_reports_filter",
    "load_reports_insights",
    "log_group_name",
    "route_sentence",
    "split_traffic",
]

log = logging.getLogger(__name__)

REPORT_FILTER_PATTERN = '?REPORT ?"platform.report"'


class LogsError(WorkbookError):
    """Reading CloudWatch Logs failed; the message says what to check."""


def log_group_name(function_name: str) -> str:
    """The log group Lambda writes to: ``/aws/lambda/<function name>``."""
    return f"/aws/lambda/{function_name}"


def _check_range(start_ms: int, end_ms: int) -> None:
    if end_ms < start_ms:
        raise ValueError(f"the time range is empty or reversed: start {start_ms} ms is after end {end_ms} ms")


def load_reports(
    function_names: Sequence[str],
    start: datetime | pd.Timestamp | int,
    end: datetime | pd.Timestamp | int,
    *,
    region: str | None = None,
    client: Any = None,
    use_insights: bool | None = None,
) -> pd.DataFrame:
    """REPORT rows for the deployed functions (their full names) between ``start`` and ``end``.

    On AWS the fast path is Logs Insights; on the local endpoint (or when Insights is denied or
    returns nothing usable) FilterLogEvents, paginated, serves. The path taken is in
    ``df.attrs["source"]``.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    _check_range(start_ms, end_ms)
    client = client or aws.client("logs", region)
    if use_insights is None:
        use_insights = not aws.is_local()
    if not use_insights and aws.is_local():
        note_once(
            "logs-insights-local",
            "workbook.logs: the local endpoint has no usable Logs Insights; reading REPORT lines with FilterLogEvents.",
        )
    if use_insights:
        try:
            df = load_reports_insights(function_names, start_ms, end_ms, client=client)
            if df.attrs.get("usable", True):
                return df
            note_once(
                "logs-insights-empty",
                "workbook.logs: Logs Insights returned no usable rows; falling back to FilterLogEvents.",
            )
        except LogsError as exc:
            note_once("logs-insights-failed", f"workbook.logs: Logs Insights unavailable ({exc}); using FilterLogEvents.")
    return load_reports_filter(function_names, start_ms, end_ms, client=client)


def load_reports_filter(
    function_names: Sequence[str], start: Any, end: Any, *, region: str | None = None, client: Any = None,
    page_size: int | None = None,
) -> pd.DataFrame:
    """REPORT rows through FilterLogEvents with a REPORT filter pattern, following nextToken.

    ``df.attrs["calls"]`` counts the FilterLogEvents calls made.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    _check_range(start_ms, end_ms)
    client = client or aws.client("logs", region)
    events: list[dict] = []
    calls = 0
    for name in function_names:
        group = log_group_name(name)
        kwargs = dict(logGroupName=group, startTime=start_ms, endTime=end_ms, filterPattern=REPORT_FILTER_PATTERN)
        if page_size:
            kwargs["limit"] = int(page_size)
        token = None
        while True:
            if token:
                kwargs["nextToken"] = token
            calls += 1
            try:
                page = client.filter_log_events(**kwargs)
            except client.exceptions.ResourceNotFoundException:
                log.info("no log group %s (the function has not run yet)", group)
                break
            except Exception as exc:  # botocore ClientError after the client's own retries
                raise _translate(exc, f"FilterLogEvents on {group}") from exc
            for event in page.get("events", []):
                event["function"] = name
                events.append(event)
            new_token = page.get("nextToken")
            if not new_token or new_token == token:
                break
            token = new_token
    df = parse_reports(events)
    df.attrs.update(source="filter_log_events", calls=calls)
    return df


_INSIGHTS_QUERY = (
    "fields @timestamp, @message, @log, @logStream "
    '| filter @message like /^REPORT / or @message like /"platform.report"/ '
    "| sort @timestamp asc "
    f"| limit {INSIGHTS_ROW_LIMIT}"
)


def load_reports_insights(
    function_names: Sequence[str],
    start: Any,
    end: Any,
    *,
    region: str | None = None,
    client: Any = None,
    poll_s: float = 1.0,
    timeout_s: float = 300.0,
) -> pd.DataFrame:
    """REPORT rows through Logs Insights, splitting the range while a query hits 10,000 rows.

    ``df.attrs["usable"]`` is False when Insights answered but with no ``@message`` field (the
    local endpoint), so the caller can fall back.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    _check_range(start_ms, end_ms)
    client = client or aws.client("logs", region)
    groups = [log_group_name(name) for name in function_names]
    rows: list[dict] = []
    usable = True
    queries = 0
    for chunk_start in range(0, len(groups), MAX_LOG_GROUPS_PER_QUERY):
        chunk = groups[chunk_start : chunk_start + MAX_LOG_GROUPS_PER_QUERY]
        pending = [(start_ms // 1000, -(-end_ms // 1000))]
        while pending:
            lo, hi = pending.pop()
            results = _run_insights(client, chunk, lo, hi, poll_s, timeout_s)
            queries += 1
            if len(results) >= INSIGHTS_ROW_LIMIT and hi - lo > 1:
                mid = (lo + hi) // 2
                pending.extend([(mid, hi), (lo, mid)])
                continue
            if len(results) >= INSIGHTS_ROW_LIMIT:
                note_once("logs-insights-dense", "workbook.logs: over 10,000 REPORT lines in one second; some rows are missing.")
            for result in results:
                fields = {f["field"]: f.get("value") for f in result}
                if "@message" not in fields:
                    usable = False
                    continue
                rows.append(fields)
    df = parse_reports(rows)
    # Split ranges share their boundary second: drop the duplicates it brings.
    if len(df):
        df = df.drop_duplicates(subset=["request_id", "function"], ignore_index=True)
    df.attrs.update(source="logs_insights", usable=usable and (len(df) > 0 or not rows), queries=queries)
    return df


def _run_insights(client: Any, groups: list[str], start_s: int, end_s: int, poll_s: float, timeout_s: float) -> list:
    try:
        query_id = client.start_query(
            logGroupNames=groups, startTime=int(start_s), endTime=int(end_s), queryString=_INSIGHTS_QUERY
        )["queryId"]
    except Exception as exc:
        raise _translate(exc, "Logs Insights StartQuery") from exc
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = client.get_query_results(queryId=query_id)
        except Exception as exc:
            raise _translate(exc, "Logs Insights GetQueryResults") from exc
        status = answer.get("status")
        if status in ("Complete", None):
            return answer.get("results", [])
        if status in ("Failed", "Cancelled", "Timeout"):
            raise LogsError(f"Logs Insights query {query_id} ended with status {status}")
        if time.monotonic() > deadline:
            raise LogsError(f"Logs Insights query {query_id} did not finish in {timeout_s:.0f} s")
        time.sleep(poll_s)


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            return LogsError(f"{what} was denied ({code}: {message}); grant logs:FilterLogEvents / logs:StartQuery to the caller")
        if code in ("ThrottlingException", "LimitExceededException", "TooManyRequestsException"):
            return LogsError(f"{what} was throttled after the client's retries ({code}); try a shorter range or later")
        return LogsError(f"{what} failed: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return LogsError(f"{what} failed: {exc}")
    return exc


TRAFFIC_VERSIONS = frozenset({"$LATEST"})
INVOCATION_KINDS = ("traffic", "tuning", "all")


def split_traffic(reports: pd.DataFrame, live_versions: Mapping[str, Sequence[str]] | None = None,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """REPORT rows split into (traffic, tuning) by the version that ran.

    Traffic is ``$LATEST``, a function's ``live_versions`` (the versions its ``live`` alias points at,
    keyed by the ``function`` column's values), and rows whose version is unknown (input without log
    stream names); every other version is power tuning's.
    """
    if reports is None or not len(reports) or "version" not in reports:
        return reports, reports.iloc[0:0] if reports is not None else reports
    version = reports["version"].astype("string")
    live = {str(f): {str(v) for v in vs} for f, vs in (live_versions or {}).items()}
    allowed = [TRAFFIC_VERSIONS | live.get(str(f), set()) for f in reports["function"]]
    is_traffic = version.isna().to_numpy() | pd.Series(
        [v in ok for v, ok in zip(version.fillna(""), allowed, strict=True)], index=reports.index).to_numpy()
    traffic, tuning = reports[is_traffic], reports[~is_traffic]
    for part in (traffic, tuning):
        part.attrs.update(reports.attrs)
    return traffic, tuning


def live_alias_versions(settings: Settings, keys: Sequence[str]) -> dict[str, list[str]]:
    """The version each function's ``live`` alias points at (functions with provisioned concurrency, on AWS).

    A function whose alias cannot be read keeps only ``$LATEST`` as traffic, and a note says so.
    """
    wanted = [k for k in keys if settings.function(k).provisioned_concurrency is not None]
    if not wanted or aws.is_local():
        return {}
    client = aws.client("lambda", settings.params.aws_region)
    found: dict[str, list[str]] = {}
    for key in wanted:
        try:
            alias = client.get_alias(FunctionName=settings.function_name(key), Name="live")
        except (ClientError, BotoCoreError) as exc:
            note_once(f"live-alias-{key}", f"workbook.logs: cannot read the live alias of {key} ({exc}); "
                      "only $LATEST counts as its traffic.")
            continue
        routing = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        found[key] = [alias["FunctionVersion"], *routing]
    return found


def load_for_env(settings: Settings, start: Any, end: Any, keys: Sequence[str] | None = None, *,
                 invocations: str = "traffic", route: Any = None, **kwargs: Any) -> pd.DataFrame:
    """REPORT rows for an environment's functions; ``function`` holds the function key.

    ``invocations``: ``"traffic"`` (the default: power tuning's versions left out, their count in
    ``df.attrs["tuning_rows"]``), ``"tuning"`` (only those), or ``"all"``. ``route`` (a
    ``workbook.telemetry.route.RouteChoice``; on the local endpoint, the local one by default) goes
    into ``df.attrs`` (``route``, ``route_reason``): these rows are the raw route's.
    """
    if invocations not in INVOCATION_KINDS:
        raise ValueError(f"invocations={invocations!r}: use one of {', '.join(INVOCATION_KINDS)}")
    keys = list(keys or specs.FUNCTION_KEYS)
    names = {settings.function_name(key): key for key in keys}
    df = load_reports(list(names), start, end, region=settings.params.aws_region, **kwargs)
    df.attrs.update(_route_attrs(route))
    if len(df):
        df["function"] = df["function"].map(lambda n: names.get(n, n)).astype("string")
    if invocations == "all":
        return df
    traffic, tuning = split_traffic(df, live_alias_versions(settings, keys) if len(df) else {})
    chosen = traffic if invocations == "traffic" else tuning
    chosen = chosen.reset_index(drop=True)
    chosen.attrs.update(df.attrs, tuning_rows=len(tuning), traffic_rows=len(traffic))
    return chosen


def _route_attrs(route: Any) -> dict[str, Any]:
    """The raw route's ``route`` / ``route_reason`` attrs: the choice given, else the local endpoint's, else "asked for"."""
    if route is None:
        route = local_choice() if aws.is_local() else RouteChoice(Route.RAW, "raw REPORT lines, as asked")
    attrs = route.attrs()
    if route.route is not Route.RAW:
        attrs["route_reason"] += "; these rows were read raw all the same (drill-down)"
        attrs["route"] = Route.RAW.value
    return attrs


def route_sentence(reports: pd.DataFrame) -> str:
    """One sentence for a notebook: which route read the window's REPORT figures, and why."""
    route = reports.attrs.get("route", "raw")
    reason = reports.attrs.get("route_reason", "raw REPORT lines, as asked")
    return f"Route: **{route}** ({reason})."

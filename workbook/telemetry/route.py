"""Which route a report's log figures take, chosen before any log query from the Invocations metric.

* ``raw``: every REPORT line to the notebook host (``workbook.telemetry.logs``), parsed in pandas. Right
  for small windows, for drill-down, and always on the local endpoint (its Logs Insights returns no
  stats).
* ``aggregate``: Logs Insights computes the figures where the logs live
  (``workbook.telemetry.aggregate``): its cost does not grow with traffic.

``choose_route`` asks CloudWatch for the functions' Invocations summed over the window (one
GetMetricData call for up to 500 functions) and compares the total with ``RAW_ROUTE_MAX_INVOCATIONS``.
The choice and its reason go into ``df.attrs`` (``route``, ``route_reason``) and the notebooks' prose.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workbook import aws
from workbook.telemetry.timestamps import epoch_ms as _epoch_ms

__all__ = ["RAW_ROUTE_MAX_INVOCATIONS", "Route", "RouteChoice", "choose_route", "local_choice"]

#: Above this many invocations in the window (all the report's functions together), the aggregate route
#: runs. The raw route's Insights reads take 10,000 rows a query, and its rows sit in memory: at 200,000
#: that is about 20 queries and 100 MB of frames, still quick; beyond it the cost grows with traffic.
RAW_ROUTE_MAX_INVOCATIONS = 200_000
_HOUR_S = 3600
_MAX_QUERIES = 500


class Route(str, Enum):
    """How the window's REPORT figures are read."""

    RAW = "raw"
    AGGREGATE = "aggregate"


@dataclass(frozen=True)
class RouteChoice:
    """The route, why, and the Invocations total it was chosen from (None when none was read)."""

    route: Route
    reason: str
    invocations: float | None = None

    def attrs(self) -> dict[str, Any]:
        """For ``df.attrs``: ``route``, ``route_reason``, ``route_invocations``."""
        return {"route": self.route.value, "route_reason": self.reason, "route_invocations": self.invocations}


def local_choice() -> RouteChoice:
    return RouteChoice(Route.RAW, "the local endpoint: raw REPORT lines (its Logs Insights returns no stats, "
                                  "and a local run has few invocations)")


def choose_route(function_names: Sequence[str], start: Any, end: Any, *, client: Any = None,
                 region: str | None = None, threshold: int = RAW_ROUTE_MAX_INVOCATIONS) -> RouteChoice:
    """The route for the window: raw at or below ``threshold`` invocations (Invocations, Sum), aggregate above.

    On the local endpoint the raw route always. When the metric cannot be read, the aggregate route,
    which serves any volume, and the reason says why.
    """
    if threshold < 0:
        raise ValueError(f"threshold {threshold} must be 0 or more invocations")
    if client is None and aws.is_local():
        return local_choice()
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    if end_ms < start_ms:
        raise ValueError(f"the time range is empty or reversed: start {start_ms} ms is after end {end_ms} ms")
    client = client or aws.client("cloudwatch", region)
    span_s = max((end_ms - start_ms) // 1000, 1)
    period_s = -(-span_s // _HOUR_S) * _HOUR_S      # whole hours: valid at every data age; the window in few points
    total = 0.0
    try:
        for first in range(0, len(function_names), _MAX_QUERIES):
            names = function_names[first:first + _MAX_QUERIES]
            queries = [{"Id": f"i{i}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations",
                           "Dimensions": [{"Name": "FunctionName", "Value": name}]},
                "Period": period_s, "Stat": "Sum"}} for i, name in enumerate(names)]
            kwargs = dict(MetricDataQueries=queries, StartTime=start_ms / 1000.0, EndTime=end_ms / 1000.0)
            while True:
                page = client.get_metric_data(**kwargs)
                total += sum(sum(r.get("Values", [])) for r in page.get("MetricDataResults", []))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError) as exc:
        return RouteChoice(Route.AGGREGATE, f"the Invocations metric could not be read ({exc}): the aggregate route, "
                                            "which serves any volume")
    if total > threshold:
        return RouteChoice(Route.AGGREGATE, f"{total:,.0f} invocations in the window (the Invocations metric) are over "
                                            f"the raw route's {threshold:,}: Logs Insights aggregates them", total)
    return RouteChoice(Route.RAW, f"{total:,.0f} invocations in the window (the Invocations metric), at most the raw "
                                  f"route's {threshold:,}: every REPORT line is read", total)

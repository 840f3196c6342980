"""A report's window of REPORT figures, by the route chosen before any log query.

``load_window`` asks ``workbook.telemetry.route.choose_route`` (one GetMetricData of Invocations; the
local endpoint is always raw), then reads the window on that route: the raw REPORT rows
(``logs.load_for_env``, traffic only) or the traffic's ``Aggregates`` (``load_aggregates`` with the
timeout rule's order statistics), with function keys in the ``function`` columns either way. The
choice and its reason are in ``Window.choice`` and in the frames' ``attrs``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from infra import specs
from infra.config import Settings
from workbook.analysis import coldstart
from workbook.analysis.aggregate import coldstart_summary, coldstart_timeline, cost_from_aggregates
from workbook.analysis.cost import cost_from_reports
from workbook.telemetry import logs
from workbook.telemetry.aggregate import BIN_S, Aggregates, count_longer, load_aggregates
from workbook.telemetry.route import RAW_ROUTE_MAX_INVOCATIONS, Route, RouteChoice, choose_route
from workbook.tuning.backtest import timeout_backtest
from workbook.tuning.rules import ranks_for_timeout, top_for_timeout

__all__ = ["DRILLDOWN_MAX_INVOCATIONS", "InsightsReader", "Window", "drilldown_range", "load_window",
           "window_backtest", "window_coldstart", "window_cost", "window_timeline"]

#: REPORT lines a drill-down sample reads on the aggregate route, at most about (a few raw queries, a few MB).
DRILLDOWN_MAX_INVOCATIONS = 20_000


@dataclass
class InsightsReader:
    """Logs Insights reads of parts of the window, for analyses that need more than the window's aggregates
    (the backtest's halves): the traffic only, function keys in the frames (``backtest.WindowReader``)."""

    names: dict[str, str]                               # full function name -> key
    region: str | None
    client: Any = None
    live_by_name: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def aggregates(self, start: Any, end: Any) -> Aggregates:
        agg = load_aggregates(list(self.names), start, end, client=self.client, region=self.region,
                              top_k=top_for_timeout, top_ranks=ranks_for_timeout, live_versions=self.live_by_name,
                              **self.options)
        return _keyed(agg.traffic(self.live_by_name), self.names)

    def count_longer(self, start: Any, end: Any, thresholds: Mapping[str, Sequence[float]]) -> dict[str, dict[float, int]]:
        by_name = {name: thresholds[key] for name, key in self.names.items() if key in thresholds}
        found = count_longer(by_name, start, end, client=self.client, region=self.region,
                             live_versions=self.live_by_name, **self.options)
        return {self.names[name]: counts for name, counts in found.items()}


@dataclass
class Window:
    """The window on its route: ``reports`` (raw route) or ``aggregates`` (aggregate route), and why."""

    choice: RouteChoice
    reports: pd.DataFrame | None = None
    aggregates: Aggregates | None = None
    #: the aggregate route's reads of parts of the window (None on the raw route)
    reader: InsightsReader | None = None

    @property
    def route(self) -> Route:
        return self.choice.route

    @property
    def data(self) -> pd.DataFrame | Aggregates:
        """What the analyses take on either route: the REPORT rows or the ``Aggregates``."""
        return self.aggregates if self.aggregates is not None else self.reports

    def sentence(self) -> str:
        return f"Route: **{self.choice.route.value}** ({self.choice.reason})."

    def invocations(self) -> int:
        """The traffic's invocations in the window (rows on the raw route, Insights' counts on the aggregate one)."""
        if self.aggregates is not None:
            return int(self.aggregates.bins["invocations"].sum()) if len(self.aggregates.bins) else 0
        return len(self.reports) if self.reports is not None else 0

    def describe(self) -> str:
        """How much the window holds and where its figures were computed, in one sentence."""
        if self.aggregates is not None:
            agg = self.aggregates
            return (f"{self.invocations():,} invocations of traffic in the window, counted and summarised by Logs "
                    f"Insights ({len(agg.bins):,} rows of 5-minute aggregates; "
                    f"{agg.attrs.get('insights', {}).get('start_query', 0):,} queries); no REPORT line was pulled.")
        reports = self.reports if self.reports is not None else pd.DataFrame()
        malformed = reports.attrs.get("malformed", 0)
        tuning = reports.attrs.get("tuning_rows", 0)
        return (f"{len(reports):,} REPORT lines of traffic in the window"
                + (f"; {malformed} malformed line(s) skipped" if malformed else "")
                + (f"; power tuning's {tuning:,} invocations (on its own versions) are left out" if tuning else "")
                + ".")

    def sample(self, settings: Settings, keys: Sequence[str] | None = None, *,
               max_invocations: int = DRILLDOWN_MAX_INVOCATIONS, logs_client: Any = None,
               **options: Any) -> pd.DataFrame:
        """REPORT rows for the charts that need single invocations: the window's own on the raw route; on the
        aggregate route a drill-down, the raw route over the window's last ``drilldown_range`` (about
        ``max_invocations``), its range in ``attrs["sample_range"]``; ``options`` go to ``logs.load_for_env``."""
        if self.aggregates is None:
            return self.reports if self.reports is not None else pd.DataFrame()
        start, end = drilldown_range(self.aggregates, max_invocations)
        rows = logs.load_for_env(settings, start, end, keys, route=self.choice, client=logs_client, **options)
        rows.attrs["sample_range"] = (start, end)
        return rows

    def sample_sentence(self, sample: pd.DataFrame) -> str:
        """What a chart drawn from ``sample`` stands for."""
        if self.aggregates is None:
            return ""
        start, end = sample.attrs.get("sample_range", (self.aggregates.end, self.aggregates.end))
        minutes = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 60
        return (f"Charts of single invocations on the aggregate route draw from a drill-down sample: the window's "
                f"last {minutes:,.1f} minutes ({len(sample):,} REPORT lines of {self.invocations():,}), read raw.")


def drilldown_range(agg: Aggregates, max_invocations: int = 0) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The window's last stretch holding about ``max_invocations`` (the default ``DRILLDOWN_MAX_INVOCATIONS``):
    whole 5-minute bins from the end while their sum fits, then the part of the next bin that fits at its rate."""
    cap = max_invocations or DRILLDOWN_MAX_INVOCATIONS
    end = agg.end
    if not len(agg.bins):
        return end, end
    per_bin = agg.bins.groupby(pd.to_datetime(agg.bins["bin_start"], utc=True))["invocations"].sum().sort_index()
    start, held = end, 0.0
    for bin_start, count in reversed(list(per_bin.items())):
        bin_end = min(bin_start + pd.Timedelta(seconds=BIN_S), end)
        if held + count <= cap:
            start, held = bin_start, held + count
            continue
        span_s = (bin_end - max(bin_start, agg.start)).total_seconds()
        part_s = span_s * (cap - held) / count
        return max(bin_end - pd.Timedelta(seconds=part_s), agg.start) if held == 0 else start, end
    return max(start, agg.start), end


def _keyed(agg: Aggregates, names: dict[str, str]) -> Aggregates:
    """The frames' full function names -> function keys."""
    for frame in (agg.bins, agg.window, agg.top):
        if len(frame):
            frame["function"] = frame["function"].map(lambda n: names.get(n, n)).astype("string")
    agg.top_needed = {names.get(n, n): k for n, k in agg.top_needed.items()}
    agg.top_ranks = {names.get(n, n): r for n, r in agg.top_ranks.items()}
    return agg


def load_window(settings: Settings, start: Any, end: Any, keys: Sequence[str] | None = None, *,
                threshold: int = RAW_ROUTE_MAX_INVOCATIONS, cloudwatch: Any = None, logs_client: Any = None,
                live_versions: Mapping[str, Sequence[str]] | None = None, **options: Any) -> Window:
    """The traffic's window for ``keys`` on the route its Invocations call for (see the module's docstring).

    ``live_versions`` (function key -> versions of its ``live`` alias) defaults to what Lambda says
    (``logs.live_alias_versions``); ``options`` go to the loader of the route taken.
    """
    keys = list(keys or specs.FUNCTION_KEYS)
    names = {settings.function_name(key): key for key in keys}
    region = settings.params.aws_region
    choice = choose_route(list(names), start, end, client=cloudwatch, region=region, threshold=threshold)
    if choice.route is Route.RAW:
        reports = logs.load_for_env(settings, start, end, keys, route=choice, client=logs_client, **options)
        return Window(choice, reports=reports)
    live = logs.live_alias_versions(settings, keys) if live_versions is None else live_versions
    live_by_name = {settings.function_name(k): list(v) for k, v in live.items()}
    reader = InsightsReader(names, region, logs_client, live_by_name, dict(options))
    traffic = reader.aggregates(start, end)
    traffic.attrs.update(choice.attrs())
    return Window(choice, aggregates=traffic, reader=reader)


def window_cost(window: Window, **options: Any) -> pd.DataFrame:
    """The window's cost per function on its route (``cost_from_reports`` or ``cost_from_aggregates``: the same
    frame, the same charges); ``options`` are theirs (region, architecture, ephemeral storage, provisioned, period)."""
    if window.aggregates is not None:
        return cost_from_aggregates(window.aggregates, **options)
    return cost_from_reports(window.reports, **options)


def window_backtest(window: Window, settings: Settings, keys: Sequence[str], split: float = 0.5) -> pd.DataFrame:
    """The timeout backtest on the window's route (``workbook.tuning.backtest``: on the aggregate route the halves
    meet on a 5-minute bin boundary, and Logs Insights reads them)."""
    return timeout_backtest(settings, window.data, keys, split, reader=window.reader)


def window_coldstart(window: Window, by: str | Sequence[str] = "function", **options: Any) -> pd.DataFrame:
    """``coldstart.summary`` on the window's route (``coldstart_summary`` from the aggregates: the same frame;
    ``attrs["percentiles"]`` says where an INIT percentile is merged); ``options``: architecture, package_type, on."""
    if window.aggregates is not None:
        return coldstart_summary(window.aggregates, by, **options)
    return coldstart.summary(window.reports, by, **options)


def window_timeline(window: Window) -> tuple[pd.DataFrame, int]:
    """``coldstart.timeline`` on the window's route and its period in seconds: 1 minute raw, the 5-minute bins
    on the aggregate route."""
    if window.aggregates is not None:
        return coldstart_timeline(window.aggregates), BIN_S
    return coldstart.timeline(window.reports, freq="1min"), 60

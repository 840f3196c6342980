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
from workbook.analysis.aggregate import cost_from_aggregates
from workbook.analysis.cost import cost_from_reports
from workbook.telemetry import logs
from workbook.telemetry.aggregate import Aggregates, count_longer, load_aggregates
from workbook.telemetry.route import RAW_ROUTE_MAX_INVOCATIONS, Route, RouteChoice, choose_route
from workbook.tuning.backtest import timeout_backtest
from workbook.tuning.rules import ranks_for_timeout, top_for_timeout

__all__ = ["InsightsReader", "Window", "load_window", "window_backtest", "window_cost"]


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

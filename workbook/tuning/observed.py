"""What a window observed of one function, read the same way from either route.

The recommendations (``workbook.tuning.recommend``), the projections behind the tuning controls
(``workbook.report.interactive.project``) and the backtest read a few figures of each function's
traffic: how many invocations, the peak Max Memory Used and the sizes that ran out of memory (the
memory floor), the mean duration, the p99.9 of all durations, the statuses seen, and the durations
of the successful invocations (the timeout rule's input). ``observe`` gives them as an ``Observed``
from the raw route's REPORT rows or from the aggregate route's ``Aggregates``:

* counts, the peak, the out-of-memory sizes, the mean and the window's span are exact on both;
* the successes are every duration on the raw route and their ``TopDurations`` on the aggregate route
  (exact for the timeout rule: ``workbook.tuning.rules.top_for_timeout``);
* the p99.9 of all durations is Logs Insights' own over the window where the function ran one traffic
  version in it, else merged across versions (``percentile_how`` says which).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbook.analysis.aggregate import EXACT, duration_percentiles, memory_floor_inputs
from workbook.telemetry.aggregate import Aggregates, window_hours
from workbook.tuning.bounds import TopDurations
from workbook.tuning.floors import Floor, memory_floor
from workbook.tuning.rules import timeout_durations

__all__ = ["Observed", "observe", "window_span_hours"]

_STATUSES = ("ok", "error", "timeout", "out_of_memory")


@dataclass(frozen=True)
class Observed:
    """One function's traffic in the window (see the module's docstring). Durations in ms, memory in MB."""

    function: str
    route: str                                   # "raw" or "aggregate"
    invocations: int
    memory_samples: int                          # invocations with a Max Memory Used
    peak_memory_mb: float | None
    oom_at_mb: list[int]
    timed_out: int
    statuses: tuple[str, ...]                    # the statuses seen, sorted
    mean_duration_ms: float                      # over all invocations
    p999_ms: float                               # of all invocations (numpy's linear quantile)
    successes: np.ndarray | TopDurations         # durations of the successful invocations
    span_hours: float                            # first to last invocation (0 with fewer than two)
    percentile_how: str = EXACT
    extra: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.invocations == 0

    def floor(self) -> Floor:
        """The memory floor from the window: peak Max Memory Used + headroom, above any out-of-memory size."""
        return memory_floor(self.peak_memory_mb, invocations=self.memory_samples, oom_at_mb=self.oom_at_mb)

    def success_count(self) -> int:
        return len(self.successes)


def observe(data: pd.DataFrame | Aggregates | None, function: str) -> Observed:
    """``function``'s ``Observed`` from REPORT rows (any functions; ``function`` column) or from ``Aggregates``."""
    if isinstance(data, Aggregates):
        return _from_aggregates(data, function)
    subset = data[data["function"] == function] if data is not None and len(data) else pd.DataFrame()
    return _from_reports(subset, function)


def window_span_hours(data: pd.DataFrame | Aggregates | None) -> float:
    """The analysed span when none is given: the rows' first to last timestamp, or the aggregates' window."""
    if isinstance(data, Aggregates):
        return window_hours(data)
    if data is None or len(data) < 2 or "timestamp" not in data:
        return 0.0
    return max((data["timestamp"].max() - data["timestamp"].min()).total_seconds() / 3600.0, 1 / 60)


def _from_reports(subset: pd.DataFrame, function: str) -> Observed:
    n = len(subset)
    status = (subset["status"].astype(str) if "status" in subset and n else pd.Series(["ok"] * n, index=subset.index,
                                                                                       dtype=object))
    used = subset["max_memory_used_mb"].dropna().astype(float) if "max_memory_used_mb" in subset else pd.Series([], dtype=float)
    oom = ([int(m) for m in subset.loc[status == "out_of_memory", "memory_size_mb"].dropna()]
           if "memory_size_mb" in subset and n else [])
    durations = subset["duration_ms"].astype(float) if n else pd.Series([], dtype=float)
    ok = subset.loc[status == "ok", "duration_ms"].dropna().astype(float).to_numpy() if n else np.asarray([], float)
    span = (max((subset["timestamp"].max() - subset["timestamp"].min()).total_seconds() / 3600, 1 / 60)
            if n > 1 and "timestamp" in subset else 0.0)
    return Observed(
        function=function, route="raw", invocations=n, memory_samples=len(used),
        peak_memory_mb=float(used.max()) if len(used) else None, oom_at_mb=oom,
        timed_out=int((status == "timeout").sum()), statuses=tuple(sorted(set(status))),
        mean_duration_ms=float(durations.mean()) if n else float("nan"),
        p999_ms=float(durations.quantile(0.999)) if n else float("nan"), successes=ok, span_hours=span)


def _from_aggregates(agg: Aggregates, function: str) -> Observed:
    bins = agg.bins[agg.bins["function"] == function] if len(agg.bins) else agg.bins
    n = int(bins["invocations"].sum()) if len(bins) else 0
    if not n:
        return Observed(function, "aggregate", 0, 0, None, [], 0, (), float("nan"), float("nan"),
                        np.asarray([], float), 0.0)
    floor = memory_floor_inputs(agg, function)
    counts = {name: int(bins[name].sum()) for name in ("failed", "timeouts", "out_of_memory")}
    seen = {"ok": n - counts["failed"], "timeout": counts["timeouts"], "out_of_memory": counts["out_of_memory"],
            "error": counts["failed"] - counts["timeouts"] - counts["out_of_memory"]}
    p999 = duration_percentiles(agg, (99.9,))
    value = p999.loc[p999["function"] == function, "value"]
    starts = pd.to_datetime(bins["bin_start"], utc=True)
    # the bins' first to last: whole 5-minute bins, not the rows' own first and last timestamps
    span = max((starts.max() - starts.min()).total_seconds() / 3600.0, 1 / 60) if starts.nunique() > 1 else 0.0
    return Observed(
        function=function, route="aggregate", invocations=n, memory_samples=n,
        peak_memory_mb=floor["peak_mb"], oom_at_mb=floor["oom_at_mb"], timed_out=counts["timeouts"],
        statuses=tuple(sorted(s for s in _STATUSES if seen[s] > 0)),
        mean_duration_ms=float(bins["duration_sum_ms"].sum()) / n,
        p999_ms=float(value.iloc[0]) if len(value) else float("nan"),
        successes=timeout_durations(agg, function), span_hours=span,
        percentile_how=p999.attrs.get("percentiles", {}).get(function, EXACT))

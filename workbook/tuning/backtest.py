"""Backtest of the timeout rule: recommend from the first part of a window, count what the second would have cut.

Each function's REPORT rows are split in time at the moment when ``split`` of its invocations
had happened (its own midpoint by default: functions invoked on different schedules each get two
halves of their own traffic). The timeout rule (``workbook.tuning.rules.recommend_timeout``, with the same floors as the
recommendations) runs on the first part; every invocation of the second part that ran longer
than the timeout it gives would have been cut. Where the first part is too thin for the rule,
the timeout stays the current one, and the count shows what the current timeout cut.

On the aggregate route (``Aggregates``) the split falls on the 5-minute bin boundary whose count of
invocations before it is nearest to ``split`` of them (``split_times``: within half a bin's invocations of
the raw route's own split); the first part's aggregates and top durations and the second part's counts
of longer invocations come from Logs Insights through a ``WindowReader``. Given the same split times
(``split_at``), the raw route gives the same rows exactly (the differential test checks it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from infra import config
from workbook.telemetry.aggregate import BIN_S, Aggregates
from workbook.tuning.analysis import TuningInputError
from workbook.tuning.defaults import TIMEOUT_HEADROOM_PCT
from workbook.tuning.floors import timeout_floor
from workbook.tuning.observed import observe
from workbook.tuning.rules import durations_quantile, recommend_timeout

__all__ = ["BACKTEST_COLUMNS", "WindowReader", "split_times", "timeout_backtest"]

BACKTEST_COLUMNS = ["function", "first_window_samples", "status", "current_s", "recommended_s", "second_window_samples",
                    "second_window_max_ms", "cut", "margin", "bound_only_s", "bound_only_cut"]


class WindowReader(Protocol):
    """Logs Insights reads of parts of a window on the aggregate route (``workbook.report.window`` gives one)."""

    def aggregates(self, start: pd.Timestamp, end: pd.Timestamp) -> Aggregates:
        """The traffic's aggregates in [start, end] (function keys), with the timeout rule's top durations."""

    def count_longer(self, start: pd.Timestamp, end: pd.Timestamp,
                     thresholds: Mapping[str, Sequence[float]]) -> dict[str, dict[float, int]]:
        """Per function key and threshold (ms): the traffic's invocations in [start, end] that ran longer."""


def timeout_backtest(settings: config.Settings, reports: pd.DataFrame | Aggregates, keys: Sequence[str],
                     split: float = 0.5, *, split_at: Mapping[str, Any] | None = None,
                     reader: WindowReader | None = None) -> pd.DataFrame:
    """One row per function: the rule's timeout from the first part, and how many invocations of the second it cuts.

    ``margin`` is the recommended timeout over the second part's longest invocation (how close it came).
    ``bound_only_s`` and ``bound_only_cut`` test the bound alone: its timeout without any floor
    (the bound plus headroom, rounded up to seconds), where the first part is large enough for one.
    ``split_at`` (function key -> time) splits at those times instead of at ``split`` of the rows.
    ``reports`` may be the aggregate route's ``Aggregates``; ``reader`` then reads the parts (see the
    module's docstring).
    """
    if not 0.0 < split < 1.0:
        raise TuningInputError(f"split {split!r} must be strictly between 0 and 1 (the share of the window before the cut)")
    if isinstance(reports, Aggregates):
        if reader is None:
            raise TuningInputError("the backtest on the aggregate route reads the window's parts from Logs Insights: "
                                   "pass reader= (workbook.report.window.Window.reader)")
        return _backtest_aggregates(settings, reports, keys, split, reader)
    rows = []
    if reports is None or not len(reports) or "timestamp" not in reports:
        return pd.DataFrame(columns=BACKTEST_COLUMNS)
    for key in keys:
        subset = reports[reports["function"] == key].sort_values("timestamp", kind="stable")
        status = subset["status"].astype(str) if "status" in subset else pd.Series("ok", index=subset.index)
        if split_at is not None and key in split_at:
            before = (subset["timestamp"] < pd.Timestamp(split_at[key])).to_numpy()
            first, second = subset[before], subset[~before]
        else:
            cut = int(len(subset) * split)
            first, second = subset.iloc[:cut], subset.iloc[cut:]
        first_ok = first.loc[status.loc[first.index] == "ok", "duration_ms"].dropna().astype(float).to_numpy()
        second_all = second["duration_ms"].dropna().astype(float).to_numpy()
        rec, bound_only = _rule(settings, key, first_ok, int((status.loc[first.index] == "timeout").sum()))
        limit_ms = rec.timeout_s * 1000.0
        rows.append(_row(key, rec, len(first_ok), len(second_all),
                         float(second_all.max()) if len(second_all) else float("nan"),
                         int((second_all > limit_ms).sum()),
                         int((second_all > bound_only * 1000.0).sum()) if bound_only else None, bound_only))
    return pd.DataFrame(rows, columns=BACKTEST_COLUMNS)


def _rule(settings: config.Settings, key: str, first_ok: Any, timed_out: int) -> tuple[Any, int | None]:
    """The timeout rule on the first part (with the recommendations' floors) and the bound alone's timeout."""
    p99 = durations_quantile(first_ok, 0.99) if len(first_ok) else None
    floor = timeout_floor(settings, key, per_record_p99_ms=p99)
    rec = recommend_timeout(first_ok, key, settings=settings, floor=floor, timed_out=timed_out)
    bound_only = (math.ceil(rec.bound.bound_ms * (1 + TIMEOUT_HEADROOM_PCT / 100.0) / 1000.0 - 1e-9)
                  if rec.bound.exists else None)
    return rec, bound_only


def _row(key: str, rec: Any, first_samples: int, second_samples: int, longest: float, cut: int,
         bound_only_cut: int | None, bound_only: int | None) -> dict[str, Any]:
    limit_ms = rec.timeout_s * 1000.0
    return {"function": key, "first_window_samples": int(first_samples), "status": rec.status.value,
            "current_s": rec.current_s, "recommended_s": rec.timeout_s,
            "second_window_samples": int(second_samples), "second_window_max_ms": round(longest, 1),
            "cut": int(cut), "margin": round(limit_ms / longest, 1) if second_samples and longest > 0 else float("nan"),
            "bound_only_s": bound_only, "bound_only_cut": bound_only_cut}


def split_times(agg: Aggregates, keys: Sequence[str], split: float = 0.5) -> dict[str, pd.Timestamp]:
    """Per function: the bin boundary whose count of invocations before it is nearest to ``split`` of them
    (the earlier one on a tie), as ``int(n * split)`` rows are the raw route's first part."""
    out = {}
    for key in keys:
        bins = agg.bins[agg.bins["function"] == key] if len(agg.bins) else agg.bins
        if not len(bins):
            continue
        per_bin = bins.groupby(pd.to_datetime(bins["bin_start"], utc=True))["invocations"].sum().sort_index()
        wanted = int(int(per_bin.sum()) * split)
        before = np.concatenate([[0.0], np.cumsum(per_bin.to_numpy(dtype=float))])
        edges = [*per_bin.index, per_bin.index[-1] + pd.Timedelta(seconds=BIN_S)]
        out[key] = pd.Timestamp(edges[int(np.argmin(np.abs(before - wanted)))])
    return out


def _backtest_aggregates(settings: config.Settings, agg: Aggregates, keys: Sequence[str], split: float,
                         reader: WindowReader) -> pd.DataFrame:
    times = split_times(agg, keys, split)
    rows = []
    firsts: dict[pd.Timestamp, Aggregates] = {}
    for at in sorted(set(times.values())):        # one read of the first part per distinct split time
        if at > agg.start:
            firsts[at] = reader.aggregates(agg.start, at - pd.Timedelta(seconds=1))
    pending: dict[pd.Timestamp, dict[str, list[float]]] = {}
    partial = {}
    for key in keys:
        at = times.get(key)                       # None: no invocation in the window
        first = observe(firsts.get(at), key)
        rec, bound_only = _rule(settings, key, first.successes, first.timed_out)
        bins = (agg.bins[(agg.bins["function"] == key) & (pd.to_datetime(agg.bins["bin_start"], utc=True) >= at)]
                if at is not None else agg.bins.iloc[:0])
        samples = int(bins["invocations"].sum()) if len(bins) else 0
        longest = float(bins["duration_max_ms"].max()) if samples else float("nan")
        thresholds = [rec.timeout_s * 1000.0] + ([bound_only * 1000.0] if bound_only else [])
        if samples:
            pending.setdefault(at, {})[key] = thresholds
        partial[key] = (rec, bound_only, first.success_count(), samples, longest, thresholds)
    counts: dict[str, dict[float, int]] = {}
    for at, asks in pending.items():
        counts.update(reader.count_longer(at, agg.end, asks))
    for key, (rec, bound_only, first_samples, samples, longest, thresholds) in partial.items():
        found = counts.get(key, {})
        cut = found.get(thresholds[0], 0)
        only_cut = found.get(thresholds[1], 0) if bound_only else None
        rows.append(_row(key, rec, first_samples, samples, longest, cut, only_cut, bound_only))
    out = pd.DataFrame(rows, columns=BACKTEST_COLUMNS)
    out.attrs.update(route="aggregate", split_at={k: str(v) for k, v in times.items()})
    return out

"""The aggregate route: the window's REPORT figures computed where the logs live (Logs Insights), not pulled.

``load_aggregates`` runs ``workbook.telemetry.insights_queries``' queries through
``workbook.telemetry.insights.run_queries`` and returns an ``Aggregates``:

* ``bins``: one row per function, version, memory size and 5-minute bin (counts, sums, percentiles, peaks;
  ``cold_starts`` counts INIT cold starts, ``inits``, and SnapStart restores, ``restores``);
* ``window``: the same per function and version over the whole window (``memory_size_mb`` NaN): its
  percentiles are Insights' own over the window, not merged from bins;
* ``top``: the longest successful durations of each function (the timeout bound's order statistics).

Its size does not grow with traffic: the bins grow with the window, the top with the rank rule's
``k`` (``top_k``, from ``workbook.tuning.bounds``, passed in: telemetry sits below tuning).
``workbook.analysis.aggregate`` turns it into the raw route's summary frames. Which route runs is
chosen from the Invocations metric (``choose_route``) before any log query.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbook import aws
from workbook.telemetry import insights_queries as iq
from workbook.telemetry import order_stats
from workbook.telemetry.insights import InsightsQuery, InsightsStats, run_queries
from workbook.telemetry.logs import TRAFFIC_VERSIONS, log_group_name
from workbook.telemetry.timestamps import epoch_ms as _epoch_ms

__all__ = ["Aggregates", "GROUP_COLUMNS", "VALUE_COLUMNS", "count_longer", "load_aggregates", "merge_percentiles",
           "rows_to_frame"]

GROUP_COLUMNS = ("function", "version", "memory_size_mb")
#: Insights' field -> the frame's column (units in the names).
_RENAME = {
    "invocations": "invocations", "failed": "failed", "timeouts": "timeouts", "out_of_memory": "out_of_memory",
    "cold_starts": "inits",                      # Insights' count of Init Durations: cold starts without restores
    "duration_min": "duration_min_ms",
    **{iq.pct_field("duration", p): iq.pct_field("duration", p) + "_ms" for p in iq.DURATION_PERCENTILES},
    "duration_max": "duration_max_ms", "ok_duration_max": "ok_duration_max_ms", "duration_sum": "duration_sum_ms",
    "init_min": "init_min_ms", **{iq.pct_field("init", p): iq.pct_field("init", p) + "_ms" for p in iq.INIT_PERCENTILES},
    "init_sum": "init_sum_ms", "init_unbilled_ms": "init_unbilled_ms",
    "restores": "restores", "restore_min": "restore_min_ms",
    **{iq.pct_field("restore", p): iq.pct_field("restore", p) + "_ms" for p in iq.RESTORE_PERCENTILES},
    "restore_sum": "restore_sum_ms", "restore_unbilled_ms": "restore_unbilled_ms",
    "billed_sum": "billed_duration_sum_ms",
    "used_max": "max_memory_used_peak_mb", "used_p99": "max_memory_used_p99_mb",
}
#: ``cold_starts`` is every cold start, as ``parse_reports``' ``cold_start``: INIT (``inits``) and SnapStart restores.
VALUE_COLUMNS = (*_RENAME.values(), "cold_starts")
_COUNTS = ("invocations", "failed", "timeouts", "out_of_memory", "inits", "restores")
_SUMS = ("duration_sum_ms", "init_sum_ms", "init_unbilled_ms", "restore_sum_ms", "restore_unbilled_ms",
         "billed_duration_sum_ms")
BIN_S = 300
#: Versions x memory sizes expected per function in one bin, to size a binned query's time range.
_GROUPS_PER_FUNCTION = 4
_ACCOUNT = re.compile(r"^\d{12}:")


def rows_to_frame(rows: Sequence[Mapping[str, Any]], functions: Mapping[str, str], *, binned: bool,
                  log_format: str = "") -> pd.DataFrame:
    """Insights' stats rows (``{field: value}``, values as strings) -> typed rows; ``functions`` maps log group -> function."""
    columns = [*GROUP_COLUMNS, *(["bin_start"] if binned else []), *VALUE_COLUMNS, "log_format"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame.from_records(list(rows))
    group = frame["@log"].astype(str).str.replace(_ACCOUNT, "", regex=True)
    frame["function"] = group.map(lambda g: functions.get(g, g.rsplit("/", 1)[-1])).astype("string")
    frame["version"] = frame["version"].astype("string") if "version" in frame else pd.NA
    frame["memory_size_mb"] = pd.to_numeric(frame["memory_mb"], errors="coerce") if "memory_mb" in frame else np.nan
    if binned:
        frame["bin_start"] = pd.to_datetime(frame[f"bin({iq.BIN})"], utc=True)
    frame = frame.rename(columns=_RENAME)
    for column in VALUE_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else np.nan
    for column in _COUNTS + _SUMS:
        frame[column] = frame[column].fillna(0.0)
    frame["cold_starts"] = frame["inits"] + frame["restores"]
    frame["log_format"] = log_format
    return frame[columns]


@dataclass
class Aggregates:
    """The aggregate route's answer for a window (see the module's docstring)."""

    bins: pd.DataFrame
    window: pd.DataFrame
    top: pd.DataFrame                        # function, version, duration_ms: longest first
    start: pd.Timestamp
    end: pd.Timestamp
    top_needed: dict[str, int] = field(default_factory=dict)    # function -> k asked for (traffic's)
    attrs: dict[str, Any] = field(default_factory=dict)
    #: function -> {rank from the top among the traffic: ms}: single order statistics, at volume (order_stats)
    top_ranks: dict[str, dict[int, float]] = field(default_factory=dict)

    def traffic(self, live_versions: Mapping[str, Sequence[str]] | None = None) -> Aggregates:
        """Only the traffic's rows: ``$LATEST``, the ``live`` alias's versions, unknown versions (as ``split_traffic``)."""
        def keep(frame: pd.DataFrame) -> pd.DataFrame:
            if not len(frame):
                return frame
            version = frame["version"].astype("string")
            ok = [pd.isna(v) or v in TRAFFIC_VERSIONS | set(map(str, (live_versions or {}).get(str(f), ())))
                  for f, v in zip(frame["function"], version, strict=True)]
            return frame[np.asarray(ok, dtype=bool)].reset_index(drop=True)

        return Aggregates(keep(self.bins), keep(self.window), keep(self.top), self.start, self.end,
                          dict(self.top_needed), dict(self.attrs), dict(self.top_ranks))

    def successes(self, function: str) -> int:
        part = self.window[self.window["function"] == function]
        return int((part["invocations"] - part["failed"]).sum())

    def top_durations(self, function: str) -> np.ndarray:
        """The function's longest successful durations in the frame (longest first)."""
        values = self.top.loc[self.top["function"] == function, "duration_ms"].astype(float).to_numpy()
        return np.sort(values)[::-1]


def merge_percentiles(counts: Sequence[float], percentiles: Sequence[Mapping[float, float]], q: float) -> float:
    """The ``q`` (0..1) quantile of a mixture of groups known only by their count and a few percentiles.

    Exact for one group. For several, each group's CDF is taken piecewise linear in log(ms) through its
    known points (``{0.0: min, 0.5: ms, 0.99: ms, 1.0: max}``) and the mixture's CDF is inverted. Whatever the
    true distributions, a mixture's quantile lies between its groups' quantiles, so the answer is
    clamped to [min, max] of the groups' own ``q`` percentile where they have one: that is the error
    bound the notebooks state.
    """
    groups = [(float(c), {k: v for k, v in p.items() if v == v}) for c, p in zip(counts, percentiles, strict=True)
              if c and c == c and any(v == v for v in p.values())]
    if not groups:
        return float("nan")
    if len(groups) == 1 and q in groups[0][1]:
        return float(groups[0][1][q])
    total = sum(c for c, _ in groups)
    knots = sorted({float(v) for _, p in groups for v in p.values() if v == v})

    def cdf(x: float) -> float:
        # linear in log(ms) between the known points: durations are skewed, closer to log-normal than uniform
        out = 0.0
        for count, p in groups:
            qs = sorted(p.items())
            values, levels = _log([v for _, v in qs]), [k for k, _ in qs]
            out += count * float(np.interp(_log([x])[0], values, levels, left=0.0, right=1.0))
        return out / total

    levels = [cdf(x) for x in knots]
    answer = knots[-1]
    for i, (x, level) in enumerate(zip(knots, levels, strict=True)):
        if level >= q:
            if i == 0 or level == levels[i - 1]:
                answer = x
            else:
                low, high = _log([knots[i - 1], x])
                answer = float(np.exp(low + (high - low) * (q - levels[i - 1]) / (level - levels[i - 1])))
            break
    own = [p[q] for _, p in groups if q in p and p[q] == p[q]]
    return float(min(max(answer, min(own)), max(own))) if own else float(answer)


def _log(values: Sequence[float]) -> np.ndarray:
    return np.log(np.maximum(np.asarray(values, dtype=float), 1e-3))


def _segments(start_s: int, end_s: int, n_groups: int) -> list[tuple[int, int]]:
    """The window in time ranges whose bins fit one query's rows; inner edges on bin boundaries."""
    bins = max(1, iq.INSIGHTS_ROW_LIMIT // (n_groups * _GROUPS_PER_FUNCTION))
    step = bins * BIN_S
    edges = [start_s, *range((start_s // step + 1) * step, end_s + 1, step), end_s + 1]
    # StartQuery's ranges include both ends: each range ends a second before the next begins
    return [(lo, hi - 1) for lo, hi in zip(edges, edges[1:], strict=False) if hi > lo]


def _binned(client: Any, chunk: list[str], functions: Mapping[str, str], start_s: int, end_s: int,
            formats: Sequence[iq.LogFormat], run: Callable[..., list], agg_short: list[str]) -> list[pd.DataFrame]:
    """The binned stats of one chunk of log groups; a range that fills a query is halved (on a bin boundary)
    and asked again; a single bin that fills one is listed in ``agg_short``."""
    pending = [(fmt, lo, hi) for fmt in formats for lo, hi in _segments(start_s, end_s, len(chunk))]
    frames = []
    while pending:
        queries = [InsightsQuery(tuple(chunk), lo, hi, iq.stats_query(fmt, binned=True), f"stats {fmt.value} {lo}-{hi}")
                   for fmt, lo, hi in pending]
        again = []
        for (fmt, lo, hi), rows in zip(pending, run(client, queries), strict=True):
            if len(rows) >= iq.INSIGHTS_ROW_LIMIT and hi - lo + 1 > BIN_S:
                mid = max((lo + (hi - lo + 1) // 2) // BIN_S * BIN_S, (lo // BIN_S + 1) * BIN_S)  # a bin boundary inside
                again += [(fmt, lo, mid - 1), (fmt, mid, hi)]
                continue
            if len(rows) >= iq.INSIGHTS_ROW_LIMIT:   # one bin holds over 10,000 groups: some are missing
                agg_short.append(f"{fmt.value} {lo}-{hi}")
            frames.append(rows_to_frame(rows, functions, binned=True, log_format=fmt.value))
        pending = again
    return frames


def load_aggregates(function_names: Sequence[str], start: Any, end: Any, *, client: Any = None,
                    region: str | None = None, top_k: Callable[[int], int] | None = None,
                    top_ranks: Callable[[int], set[int]] | None = None,
                    live_versions: Mapping[str, Sequence[str]] | None = None,
                    log_formats: Sequence[iq.LogFormat | str] = (iq.LogFormat.JSON, iq.LogFormat.TEXT),
                    stats: InsightsStats | None = None, **run_options: Any) -> Aggregates:
    """The window's aggregates for the functions (full names), computed by Logs Insights.

    ``top_k(n)``: how many of the longest of ``n`` successful durations the timeout bound needs
    (``workbook.tuning.rules.top_for_timeout``); None fetches none. ``top_ranks(n)``: the ranks it
    reads (``rules.ranks_for_timeout``); when given, a function whose top would pass one query's rows
    gets those ranks by counting (``workbook.telemetry.order_stats``) instead, in ``top_ranks``. ``run_options`` go to
    ``run_queries`` (concurrency, poll_s, sleep, ...); ``stats`` counts the calls, rows and bytes.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    if end_ms < start_ms:
        raise ValueError(f"the time range is empty or reversed: start {start_ms} ms is after end {end_ms} ms")
    client = client or aws.client("logs", region)
    stats = stats if stats is not None else InsightsStats()
    formats = [iq.LogFormat(f) for f in log_formats]
    functions = {log_group_name(name): name for name in function_names}
    start_s, end_s = start_ms // 1000, -(-end_ms // 1000)

    def run(c: Any, queries: Sequence[InsightsQuery]) -> list:
        return run_queries(c, queries, stats=stats, **run_options)

    bins, windows, short = [], [], []
    for chunk in iq.chunks(list(functions)):
        bins += _binned(client, chunk, functions, start_s, end_s, formats, run, short)
        queries = [InsightsQuery(tuple(chunk), start_s, end_s, iq.stats_query(fmt, binned=False), f"window {fmt.value}")
                   for fmt in formats]
        windows += [rows_to_frame(rows, functions, binned=False, log_format=fmt.value)
                    for fmt, rows in zip(formats, run(client, queries), strict=True)]
    window = _concat(windows)
    agg = Aggregates(_concat(bins), window, pd.DataFrame(columns=["function", "version", "duration_ms"]),
                     pd.Timestamp(start_ms, unit="ms", tz="UTC"), pd.Timestamp(end_ms, unit="ms", tz="UTC"))
    if top_k is not None:
        _fetch_top(agg, client, functions, start_s, end_s, top_k, live_versions, run, top_ranks)
    agg.attrs.update(route="aggregate", source="logs_insights", insights=stats.as_dict())
    if short:
        agg.attrs["bins_short"] = short
    return agg


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else rows_to_frame([], {}, binned=False)


def _ranges(start_s: int, end_s: int, pieces: int) -> list[tuple[int, int]]:
    """``pieces`` time ranges that tile [start_s, end_s]: StartQuery's ranges include both ends, so each ends
    a second before the next begins."""
    edges = sorted({start_s, *(start_s + (end_s - start_s) * i // pieces for i in range(1, pieces)), end_s + 1})
    return [(lo, hi - 1) for lo, hi in zip(edges, edges[1:], strict=False)]


@dataclass
class _TopPart:
    name: str
    group: str
    log_format: str
    start_s: int
    end_s: int
    limit: int
    frame: pd.DataFrame | None = None

    split: bool = False     # one of several parts: its limit is a share of the need, not all of it

    @property
    def full(self) -> bool:
        """It returned its row limit as one of several parts: rows below its shortest may be missing."""
        return self.frame is not None and self.split and len(self.frame) >= self.limit


def _fetch_top(agg: Aggregates, client: Any, functions: Mapping[str, str], start_s: int, end_s: int,
               top_k: Callable[[int], int], live_versions: Mapping[str, Sequence[str]] | None, run: Callable,
               top_ranks: Callable[[int], set[int]] | None = None) -> None:
    """The longest successful durations per function: k for the traffic, plus every other version's successes.

    When more rows are needed than one query returns, the window is split in parts of at most 80% of the
    limit, each asked for 25% more than its share; a part that came back full and whose shortest row is
    longer than the traffic's k-th longest so far may hide rows of the top: it is halved and asked
    again. The union then holds the exact top.
    """
    traffic = agg.traffic(live_versions)
    pending: list[_TopPart] = []
    searches = []
    for group, name in functions.items():
        n = traffic.successes(name)
        k = agg.top_needed[name] = top_k(n) if n else 0
        wanted = k + agg.successes(name) - n
        if not k:
            continue
        formats = agg.window.loc[agg.window["function"] == name, "log_format"].unique()
        if top_ranks is not None and wanted > iq.INSIGHTS_ROW_LIMIT:
            longest = float(agg.window.loc[agg.window["function"] == name, "duration_max_ms"].max())
            searches += [(name, group, fmt, longest, top_ranks(n) - {1}) for fmt in formats]
            longest_ok = traffic.window.loc[traffic.window["function"] == name, "ok_duration_max_ms"].max()
            agg.top_ranks.setdefault(name, {})[1] = float(longest_ok)    # rank 1: the window's stats have it
            continue
        # parts of at most 80% of the limit each, asked for 25% more than their share of the need
        pieces = 1 if wanted <= iq.INSIGHTS_ROW_LIMIT else math.ceil(wanted / (0.8 * iq.INSIGHTS_ROW_LIMIT))
        limit = min(iq.INSIGHTS_ROW_LIMIT, math.ceil(wanted / pieces * (1.25 if pieces > 1 else 1.0)))
        for fmt in formats:
            pending += [_TopPart(name, group, fmt, lo, hi, limit, split=pieces > 1)
                        for lo, hi in _ranges(start_s, end_s, pieces)]
    done: list[_TopPart] = []
    while pending:
        queries = [InsightsQuery((p.group,), p.start_s, p.end_s, iq.top_durations_query(p.log_format, p.limit),
                                 f"top {p.name} {p.start_s}-{p.end_s}") for p in pending]
        for part, rows in zip(pending, run(client, queries), strict=True):
            part.frame = _top_frame(part.name, rows)
        done += pending
        pending = []
        agg.top = _union(done)
        kept = agg.traffic(live_versions)
        for part in [p for p in done if p.full]:
            kth = kept.top_durations(part.name)[agg.top_needed[part.name] - 1:][:1]
            if float(part.frame["duration_ms"].min()) > (kth[0] if len(kth) else -math.inf):
                if part.end_s - part.start_s < 1:
                    agg.attrs.setdefault("top_short", {})[part.name] = "over 10,000 of the longest in one second"
                    continue
                done.remove(part)
                pending += [_TopPart(part.name, part.group, part.log_format, lo, hi, part.limit, split=True)
                            for lo, hi in _ranges(part.start_s, part.end_s, 2)]
    agg.attrs["top_queries"] = len(done)
    if searches:
        found, problems = order_stats.fetch_ranks(
            client, searches, order_stats.traffic_of(live_versions, TRAFFIC_VERSIONS), start_s, end_s, run)
        for name, ranks in found.items():
            agg.top_ranks.setdefault(name, {}).update(ranks)
        for name, problem in problems.items():
            agg.attrs.setdefault("top_short", {})[name] = problem


def _top_frame(name: str, rows: list) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=["duration_ms", "version"])
    frame["function"] = name
    frame["duration_ms"] = pd.to_numeric(frame["duration_ms"], errors="coerce")
    frame["version"] = frame["version"].astype("string")
    return frame[["function", "version", "duration_ms"]]


def _union(parts: list[_TopPart]) -> pd.DataFrame:
    frames = [p.frame for p in parts if p.frame is not None and len(p.frame)]
    if not frames:
        return pd.DataFrame(columns=["function", "version", "duration_ms"])
    return (pd.concat(frames, ignore_index=True).sort_values(["function", "duration_ms"], ascending=[True, False])
            .reset_index(drop=True))


def window_hours(agg: Aggregates) -> float:
    return max((agg.end - agg.start).total_seconds() / 3600.0, 1 / 60)


def count_longer(asks: Mapping[str, Sequence[float]], start: Any, end: Any, *, client: Any = None,
                 region: str | None = None, live_versions: Mapping[str, Sequence[str]] | None = None,
                 log_formats: Sequence[iq.LogFormat | str] = (iq.LogFormat.JSON, iq.LogFormat.TEXT),
                 stats: InsightsStats | None = None, **run_options: Any) -> dict[str, dict[float, int]]:
    """How many of each function's traffic invocations (any status) ran longer than each threshold, in [start, end].

    ``asks``: function (full name) -> thresholds in ms. One ``longer_query`` per function, threshold and log
    format, on the function's own log group; versions outside the traffic (power tuning's) are left out.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    out: dict[str, dict[float, int]] = {name: {float(t): 0 for t in thresholds} for name, thresholds in asks.items()}
    if end_ms < start_ms or not asks:
        return out
    client = client or aws.client("logs", region)
    traffic = order_stats.traffic_of(live_versions, TRAFFIC_VERSIONS)
    wanted = [(name, float(t), iq.LogFormat(fmt)) for name, thresholds in asks.items()
              for t in sorted(set(map(float, thresholds))) for fmt in log_formats]
    queries = [InsightsQuery((log_group_name(name),), start_ms // 1000, -(-end_ms // 1000), iq.longer_query(fmt, t),
                             f"longer {name} {t:g} {fmt.value}") for name, t, fmt in wanted]
    results = run_queries(client, queries, stats=stats if stats is not None else InsightsStats(), **run_options)
    for (name, threshold, _), rows in zip(wanted, results, strict=True):
        versions = traffic(name)
        out[name][threshold] += sum(int(float(r.get("longer", 0) or 0)) for r in rows
                                    if r.get("version") is None or str(r.get("version")) in versions)
    return out

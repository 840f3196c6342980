"""Benchmark: a report's log reads at production volume, raw route beside aggregate route.

Simulated windows of traffic at 1, 10, 100 and 1,000 invocations/s across the six functions (evenly
split; JSON log format, as ``infra`` deploys), through ``VolumeLogs``: a CloudWatch Logs client double
that answers StartQuery / GetQueryResults in AWS's shapes and counts calls, rows and bytes. It
computes no statistics: rows carry plausible values, and what is measured is what the routes ask
for and carry.

* aggregate route: ``workbook.telemetry.aggregate.load_aggregates`` (with the timeout rule's top
  durations), run for real at every size: calls, rows, bytes and peak memory are measured.
* raw route: ``workbook.telemetry.logs.load_reports_insights`` (every REPORT line, the range halved
  while a query returns 10,000 rows, one query at a time), run for real at 1 invocation/s. Above
  that the double would have to make 10^7-10^9 rows: the same halving is replayed on counts alone
  (``raw_plan``, checked against the real run at 1/s), and bytes and memory are scaled from the
  real run's per-row figures. Those rows say "modelled".

Wall time is modelled at a stated Insights latency (``--latency-s``, default 10 s a query): the
raw route runs its queries one after another; the aggregate route runs each batch ``concurrency``
at a time. Polling is every second, so each query costs 1 StartQuery and about latency / 1 s
GetQueryResults calls. Peak memory is the peak RSS of a fresh process (``--one``) above the same
process's RSS after imports. Prints a Markdown table; asserts nothing.

    .venv/bin/python bench/volume.py [--hours 24] [--latency-s 10] [--rates 1,10,100,1000] [--week]
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FUNCTIONS = ("api-processor", "data-processor", "file-processor", "scheduler", "notification-handler",
             "auth-handler")
START_S = 1_764_547_200          # 2025-12-01 00:00 UTC
ACCOUNT = "123456789012"
ROW_LIMIT = 10_000


def names(prefix: str = "wb-prod") -> list[str]:
    return [f"{prefix}-{key}" for key in FUNCTIONS]


class VolumeLogs:
    """A Logs client double for ``rate`` invocations/s spread over the log groups it is asked about."""

    def __init__(self, rate_per_s: float, n_functions: int = len(FUNCTIONS)):
        self.rate_per_function = rate_per_s / n_functions
        self.queries: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self.calls = {"start_query": 0, "get_query_results": 0}
        self.rows = 0

    def start_query(self, *, logGroupNames, startTime, endTime, queryString, **_):  # noqa: N803 (the API's names)
        self.calls["start_query"] += 1
        query_id = f"q-{next(self._ids)}"
        self.queries[query_id] = dict(groups=list(logGroupNames), start=int(startTime), end=int(endTime),
                                      query=queryString)
        return {"queryId": query_id}

    def get_query_results(self, *, queryId):  # noqa: N803
        self.calls["get_query_results"] += 1
        q = self.queries.pop(queryId)
        rows = self._answer(q["groups"], q["start"], q["end"], q["query"])[:ROW_LIMIT]
        self.rows += len(rows)
        return {"status": "Complete", "results": rows,
                "statistics": {"recordsMatched": float(len(rows)), "recordsScanned": 0.0, "bytesScanned": 0.0}}

    def count(self, start_s: int, end_s: int) -> int:
        """Invocations of one function in [start_s, end_s] (both ends included, to the second)."""
        first, last = self._span(start_s, end_s)
        return max(last - first + 1, 0)

    def _span(self, start_s: int, end_s: int) -> tuple[int, int]:
        """The indexes of the first and last invocation (one every 1 / rate s from START_S) in [start_s, end_s + 1)."""
        step = 1.0 / self.rate_per_function
        return math.ceil((start_s - START_S) / step - 1e-9), math.ceil((end_s + 1 - START_S) / step - 1e-9) - 1

    def _answer(self, groups, start_s, end_s, query) -> list:
        if '@type = "REPORT"' in query:                           # the aggregate's text format: the stack writes JSON
            return []
        if query.startswith("fields @timestamp, @message"):       # the raw route's query
            return self._raw(groups, start_s, end_s)
        n = self.count(start_s, end_s)
        if " as bucket" in query:                                 # a histogram of log-normal durations
            return _histogram(query, n)
        if "| limit" in query:                                    # the top durations (or one bucket's)
            limit = int(query.rsplit("| limit", 1)[1])
            return [[{"field": "duration_ms", "value": f"{900.0 - i * 0.001:.3f}"}, {"field": "version", "value": "$LATEST"}]
                    for i in range(min(limit, int(n * 0.99)))]
        rows = []
        bins = (range(start_s // 300 * 300, end_s + 1, 300) if "bin(5m)" in query else [None])
        for group in groups:
            for b in bins:
                per = self.count(max(b, start_s), min(b + 299, end_s)) if b is not None else n
                if per <= 0:
                    continue
                fields = {"@log": f"{ACCOUNT}:{group}", "version": "$LATEST"}
                if b is not None:
                    fields |= {"memory_mb": "512",
                               "bin(5m)": time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(b))}
                fields |= _stats(per)
                rows.append([{"field": k, "value": v} for k, v in fields.items()])
        return rows

    def _raw(self, groups, start_s, end_s) -> list:
        rows = []
        step = 1.0 / self.rate_per_function
        for group in groups:
            first, last = self._span(start_s, end_s)
            for i in range(first, last + 1):
                ms = int((START_S + i * step) * 1000)
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}"
                message = json.dumps({"time": stamp.replace(" ", "T") + "Z", "type": "platform.report", "record": {
                    "requestId": f"{group[-8:]}-{i:012d}", "metrics": {
                        "durationMs": 80.5 + i % 97, "billedDurationMs": 81 + i % 97, "memorySizeMB": 512,
                        "maxMemoryUsedMB": 90}, "status": "success"}}, separators=(",", ":"))
                rows.append([{"field": "@timestamp", "value": stamp}, {"field": "@message", "value": message},
                             {"field": "@log", "value": f"{ACCOUNT}:{group}"},
                             {"field": "@logStream", "value": "2025/12/01/[$LATEST]0123456789abcdef"}])
                if len(rows) >= ROW_LIMIT:
                    return rows
        return rows


def _cdf_ms(ms: float) -> float:
    """The share of durations at or below ``ms``: log-normal, median 80 ms, sigma 0.5, capped at 3,000 ms."""
    if ms <= 0:
        return 0.0
    return 1.0 if ms >= 3000 else 0.5 * (1 + math.erf((math.log(ms) - math.log(80.0)) / (0.5 * math.sqrt(2))))


def _histogram(query: str, n: int) -> list:
    import re

    width = float(re.search(r" / ([0-9.e+-]+)\) as bucket", query).group(1))
    low = re.search(r" >= ([0-9.e+-]+)", query)
    high = re.search(r" < ([0-9.e+-]+)", query)
    lo, hi = float(low.group(1)) if low else 0.0, float(high.group(1)) if high else 3000.0
    rows = []
    for b in range(int(lo // width), int(math.ceil(hi / width)) + 1):
        count = round(n * (_cdf_ms(min((b + 1) * width, hi)) - _cdf_ms(max(b * width, lo))))
        if count > 0:
            rows.append([{"field": "version", "value": "$LATEST"}, {"field": "bucket", "value": str(b)},
                         {"field": "n", "value": str(count)}])
    return rows


def _stats(n: int) -> dict[str, str]:
    from workbook.telemetry import insights_queries as iq

    values = {name: "80.5" for name in iq.STATS_FIELDS}
    values |= {"invocations": str(n), "failed": str(n // 100), "duration_max": "3000", "ok_duration_max": "2990", "timeouts": "0", "out_of_memory": "0",
               "cold_starts": str(max(1, n // 1000)), "duration_sum": f"{n * 95.0:.1f}",
               "billed_sum": f"{n * 96.0:.1f}", "init_sum": "420.5", "init_unbilled_ms": "0", "used_max": "120",
               "used_p99": "110"}
    return values


def raw_plan(total_rate_per_s: float, seconds: int) -> dict[str, int]:
    """The raw route's queries and rows, replayed on counts: ``load_reports_insights``' halving (one chunk)."""
    double = VolumeLogs(total_rate_per_s)
    queries = rows = kept = 0
    pending = [(START_S, START_S + seconds)]
    while pending:
        lo, hi = pending.pop()
        n = min(ROW_LIMIT, len(FUNCTIONS) * double.count(lo, hi))
        queries += 1
        rows += n
        if n >= ROW_LIMIT and hi - lo > 1:
            mid = (lo + hi) // 2
            pending += [(mid, hi), (lo, mid)]
            continue
        kept += n
    return {"queries": queries, "rows": rows, "kept": kept}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2 ** 20


def measure(route: str, rate: float, hours: float, concurrency: int = 10) -> dict:
    """One route at one rate, in this process: calls, rows, bytes, batches, CPU seconds, peak RSS above the start."""
    import pandas as pd  # noqa: F401  (imported before the baseline, as the routes need it)

    from workbook.telemetry import aggregate, logs
    from workbook.telemetry.insights import InsightsStats
    from workbook.tuning.rules import ranks_for_timeout, top_for_timeout

    base = _current_rss_mib()
    double = VolumeLogs(rate)
    seconds = int(hours * 3600)
    began = time.process_time()
    if route == "aggregate":
        stats = InsightsStats()
        agg = aggregate.load_aggregates(names(), START_S * 1000, (START_S + seconds) * 1000, client=double,
                                        top_k=top_for_timeout, top_ranks=ranks_for_timeout, stats=stats,
                                        concurrency=concurrency,
                                        sleep=lambda s: None)
        out = {"start_query": stats.start_query, "rows": stats.rows, "bytes": stats.bytes, "batches": stats.batches,
               "kept_rows": len(agg.bins) + len(agg.window) + len(agg.top),
               "invocations": int(agg.window["invocations"].sum())}
    else:
        df = logs.load_reports_insights(names(), START_S * 1000, (START_S + seconds) * 1000, client=double, poll_s=0)
        out = {"start_query": double.calls["start_query"], "rows": double.rows, "kept_rows": len(df),
               "bytes": None, "batches": [1] * double.calls["start_query"], "invocations": len(df)}
    out |= {"cpu_s": time.process_time() - began, "peak_mib": max(_rss_mib() - base, 0.0)}
    return out


def _fresh(route: str, rate: float, hours: float, concurrency: int) -> dict:
    """``measure`` in a new interpreter, so its peak RSS is its own."""
    done = subprocess.run([sys.executable, __file__, "--one", route, str(rate), str(hours), str(concurrency)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def wall_s(batches: list[int], concurrency: int, latency_s: float, cpu_s: float) -> float:
    """Modelled wall time: each batch in waves of ``concurrency`` queries at ``latency_s``, plus the CPU time."""
    return sum(math.ceil(b / concurrency) for b in batches) * latency_s + cpu_s


def table(rates: list[float], hours: float, latency_s: float, concurrency: int, week: bool) -> list[dict]:
    """Both routes at each rate (and, with ``week``, the aggregate route over 7 days at the top rate)."""
    rows = []
    real_raw = _fresh("raw", rates[0], hours, 1)
    plan = raw_plan(rates[0], int(hours * 3600))
    assert plan["queries"] == real_raw["start_query"] and plan["rows"] == real_raw["rows"], (plan, real_raw)
    bytes_per_row = _raw_bytes_per_row(rates[0])
    mib_per_kept = real_raw["peak_mib"] / max(real_raw["kept_rows"], 1)
    cases = [(rate, hours) for rate in rates] + ([(rates[-1], 24 * 7)] if week else [])
    for rate, span in cases:
        agg = _fresh("aggregate", rate, span, concurrency)
        rows.append(_row("aggregate", rate, span, agg["start_query"], agg["rows"], agg["bytes"], agg["peak_mib"],
                         wall_s(agg["batches"], concurrency, latency_s, agg["cpu_s"]), latency_s, "measured"))
        plan = raw_plan(rate, int(span * 3600))
        if rate == rates[0] and span == hours:
            rows.append(_row("raw", rate, span, plan["queries"], plan["rows"], plan["rows"] * bytes_per_row,
                             real_raw["peak_mib"], wall_s([1] * plan["queries"], 1, latency_s, real_raw["cpu_s"]),
                             latency_s, "measured"))
        else:
            scale = plan["kept"] / max(real_raw["kept_rows"], 1)
            rows.append(_row("raw", rate, span, plan["queries"], plan["rows"], plan["rows"] * bytes_per_row,
                             plan["kept"] * mib_per_kept, wall_s([1] * plan["queries"], 1, latency_s,
                                                                 real_raw["cpu_s"] * scale), latency_s, "modelled"))
    return rows


def _raw_bytes_per_row(rate: float) -> float:
    double = VolumeLogs(rate)
    sample = double._raw(names()[:1], START_S, START_S + 3600)
    return len(json.dumps(sample, separators=(",", ":"))) / max(len(sample), 1)


def _row(route, rate, hours, queries, rows, bytes_, peak_mib, wall, latency_s, how) -> dict:
    polls = math.ceil(latency_s / 1.0)
    return {"route": route, "inv/s": rate, "window_h": hours, "StartQuery": queries,
            "API calls at latency": queries * (1 + polls), "rows": rows, "MiB transferred": (bytes_ or 0) / 2 ** 20,
            "peak MiB": peak_mib, "wall s at latency": wall, "how": how}


def markdown(rows: list[dict]) -> str:
    head = ["route", "inv/s", "window", "StartQuery", "API calls", "rows", "MiB transferred", "peak MiB", "wall",
            "how"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        window = f"{r['window_h'] / 24:g} d" if r["window_h"] >= 24 else f"{r['window_h']:g} h"
        wall = r["wall s at latency"]
        lines.append(f"| {r['route']} | {r['inv/s']:,g} | {window} | {r['StartQuery']:,} | {r['API calls at latency']:,} | "
                     f"{r['rows']:,} | {r['MiB transferred']:,.1f} | {r['peak MiB']:,.0f} | "
                     f"{_duration(wall)} | {r['how']} |")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rates", default="1,10,100,1000")
    parser.add_argument("--week", action="store_true", help="also the aggregate route over 7 days at the top rate")
    parser.add_argument("--one", nargs=4, metavar=("ROUTE", "RATE", "HOURS", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        route, rate, hours, concurrency = args.one
        print(json.dumps(measure(route, float(rate), float(hours), int(concurrency))))
        return 0
    rates = [float(r) for r in args.rates.split(",")]
    rows = table(rates, args.hours, args.latency_s, args.concurrency, args.week)
    print(f"Insights latency {args.latency_s:g} s a query, polled every 1 s; aggregate concurrency {args.concurrency}")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A Logs Insights double that answers the aggregate route's queries from a set of invocations, computed
here with pandas/numpy (an oracle independent of workbook.telemetry's parsing and of the route's code).

It answers ``start_query`` / ``get_query_results`` in the documented shapes (``{"queryId"}``;
``{"status", "results": [[{"field", "value"}]], "statistics"}``), values as strings, as Insights
gives them. It recognises the queries of ``workbook.telemetry.insights_queries`` by their
text: the log format by its filter, binned or not by ``bin(5m)``, the top durations by
``sort duration_ms desc | limit k``, the histogram by ``as bucket``, the count of longer invocations
by ``duration > ms``. Percentiles are numpy's linear ones (the raw route's pandas
quantile); the bin's value is written as Insights writes it (``2025-11-01 10:05:00.000``).
"""
from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd

from workbook.telemetry import insights_queries

ACCOUNT = "123456789012"


def _num(value: float) -> str:
    return "" if value != value else repr(float(value))


class InsightsFromInvocations:
    """``invocations``: one row per invocation with function, log_format ("Text"/"JSON"), version,
    time (UTC), duration_ms, billed_ms, memory_mb, used_mb, init_ms (NaN when warm), status
    (ok/error/timeout/out_of_memory)."""

    def __init__(self, invocations: pd.DataFrame):
        self.invocations = invocations
        self.queries: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self.calls = {"start_query": 0, "get_query_results": 0}

    def start_query(self, *, logGroupNames, startTime, endTime, queryString, **_):  # noqa: N803 (the API's names)
        self.calls["start_query"] += 1
        query_id = f"q-{next(self._ids)}"
        self.queries[query_id] = dict(groups=logGroupNames, start=startTime, end=endTime, query=queryString)
        return {"queryId": query_id}

    def get_query_results(self, *, queryId):  # noqa: N803
        self.calls["get_query_results"] += 1
        q = self.queries[queryId]
        rows = self.answer(q["groups"], q["start"], q["end"], q["query"])[:insights_queries.INSIGHTS_ROW_LIMIT]
        return {"status": "Complete", "results": rows,
                "statistics": {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}}

    def _rows(self, groups, start_s, end_s, query) -> pd.DataFrame:
        fmt = "Text" if '@type = "REPORT"' in query else "JSON"
        names = {g.rsplit("/", 1)[-1] for g in groups}
        t = self.invocations["time"]
        # both ends included, to the second (an event at end_s.5 is in)
        keep = (self.invocations["function"].isin(names) & (self.invocations["log_format"] == fmt)
                & (t >= pd.Timestamp(start_s, unit="s", tz="UTC")) & (t < pd.Timestamp(end_s + 1, unit="s", tz="UTC")))
        return self.invocations[keep]

    def answer(self, groups, start_s, end_s, query) -> list:
        rows = self._rows(groups, start_s, end_s, query)
        low = re.search(r" >= ([0-9.e+-]+)", query)
        high = re.search(r" < ([0-9.e+-]+)", query)
        if low:
            rows = rows[rows["duration_ms"] >= float(low.group(1))]
        if high:
            rows = rows[rows["duration_ms"] < float(high.group(1))]
        above = re.search(r" > ([0-9.e+-]+)\n", query)
        if above:                                     # the backtest's cut: any status, longer than the timeout
            longer = rows[rows["duration_ms"] > float(above.group(1))].groupby("version").size()
            return [[{"field": "version", "value": v}, {"field": "longer", "value": str(n)}]
                    for v, n in longer.items()]
        width = re.search(r"floor\(\S+ / ([0-9.e+-]+)\) as bucket", query)
        if width:                                     # the histogram of successful durations
            ok = rows[rows["status"] == "ok"]
            counts = ok.assign(bucket=np.floor(ok["duration_ms"] / float(width.group(1))).astype(int)).groupby(
                ["version", "bucket"]).size()
            return [[{"field": "version", "value": v}, {"field": "bucket", "value": str(b)},
                     {"field": "n", "value": str(n)}] for (v, b), n in counts.items()]
        limit = re.search(r"\| limit (\d+)$", query)
        if limit:
            ok = rows[rows["status"] == "ok"].sort_values("duration_ms", ascending=False).head(int(limit.group(1)))
            return [[{"field": "duration_ms", "value": _num(d)}, {"field": "version", "value": v}]
                    for d, v in zip(ok["duration_ms"], ok["version"], strict=True)]
        by = [name.strip() for name in query.rsplit(" by ", 1)[1].split(",")]
        frame = rows.assign(**{"@log": f"{ACCOUNT}:/aws/lambda/" + rows["function"],
                               "bin(5m)": rows["time"].dt.floor("5min")})
        out = []
        for key, g in frame.groupby(by, sort=True):
            fields = dict(zip(by, key, strict=True))
            if "memory_mb" in fields:
                fields["memory_mb"] = _num(fields["memory_mb"])
            if "bin(5m)" in fields:
                fields["bin(5m)"] = fields["bin(5m)"].strftime("%Y-%m-%d %H:%M:%S.000")
            fields.update(self._stats(g))
            out.append([{"field": k, "value": v} for k, v in fields.items() if v != ""])
        return out

    @staticmethod
    def _stats(g: pd.DataFrame) -> dict[str, str]:
        duration, init = g["duration_ms"].to_numpy(float), g["init_ms"].to_numpy(float)
        cold = init[~np.isnan(init)]
        unbilled = g["billed_ms"].to_numpy(float) < np.ceil(duration + np.nan_to_num(init))
        pct = lambda values, p: _num(np.percentile(values, p)) if len(values) else ""
        stats = {"invocations": str(len(g)), "failed": str(int((g["status"] != "ok").sum())),
                 "timeouts": str(int((g["status"] == "timeout").sum())),
                 "out_of_memory": str(int((g["status"] == "out_of_memory").sum())), "cold_starts": str(len(cold))}
        stats["duration_min"] = _num(duration.min())
        stats["init_min"] = _num(cold.min()) if len(cold) else ""
        for p in (10, 25, 50, 75, 90, 95, 99, 99.9):
            stats[f"duration_p{p:g}".replace(".", "_")] = pct(duration, p)
        ok_max = float(np.where(g["status"].to_numpy() == "ok", duration, 0.0).max())
        stats |= {"duration_max": _num(duration.max()), "ok_duration_max": _num(ok_max),
                  "duration_sum": _num(duration.sum())}
        for p in (50, 95, 99):
            stats[f"init_p{p}"] = pct(cold, p)
        restore = g["restore_ms"].to_numpy(float) if "restore_ms" in g else np.full(len(g), np.nan)
        billed_restore = g["billed_restore_ms"].to_numpy(float) if "billed_restore_ms" in g else np.full(len(g), np.nan)
        restored = restore[~np.isnan(restore)]
        restore_unbilled = (~np.isnan(billed_restore)) & (g["billed_ms"].to_numpy(float)
                                                          < np.ceil(duration + np.nan_to_num(billed_restore)))
        stats |= {"restores": str(len(restored)), "restore_min": _num(restored.min()) if len(restored) else "",
                  **{f"restore_p{p}": pct(restored, p) for p in (50, 95, 99)},
                  "restore_sum": _num(restored.sum()) if len(restored) else "",
                  "restore_unbilled_ms": _num(float(np.where(restore_unbilled, np.nan_to_num(billed_restore), 0).sum()))}
        stats |= {
            "init_sum": _num(cold.sum()) if len(cold) else "",
            "init_unbilled_ms": _num(float(np.where(~np.isnan(init) & unbilled, np.ceil(np.nan_to_num(init)), 0).sum())),
            "billed_sum": _num(g["billed_ms"].sum()), "used_max": _num(g["used_mb"].max()),
            "used_p99": pct(g["used_mb"].to_numpy(float), 99),
        }
        return stats


def generate(seed: int = 7) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
    """Invocations over two hours for three functions: ``api`` (JSON, 512 MB, 4,000 traffic invocations and
    300 of power tuning's on version 3 at 1,024 MB), ``files`` (text, 256 MB then 512 MB halfway), ``sched``
    (text, 60 invocations, mostly cold)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-11-01 10:00:00", tz="UTC")
    end = start + pd.Timedelta(hours=2)
    parts = []

    def make(function, fmt, n, memory, version="$LATEST", cold_share=0.02, scale=80.0, t0=0.0, t1=7200.0):
        seconds = np.sort(rng.uniform(t0, t1, n))
        duration = np.round(rng.lognormal(math.log(scale), 0.5, n), 2)
        status = rng.choice(["ok", "error", "timeout", "out_of_memory"], n, p=[0.95, 0.03, 0.01, 0.01])
        duration = np.where(status == "timeout", 3000.0, duration)
        init = np.where(rng.random(n) < cold_share, np.round(rng.uniform(150, 900, n), 2), np.nan)
        includes_init = rng.random(n) < 0.5
        billed = np.ceil(duration + np.where(includes_init, np.nan_to_num(init), 0.0))
        used = np.minimum(memory, rng.integers(40, int(memory * 0.6), n)).astype(float)
        used = np.where(status == "out_of_memory", float(memory), used)
        parts.append(pd.DataFrame({
            "function": function, "log_format": fmt, "version": version,
            "time": start + pd.to_timedelta(np.round(seconds * 1000), unit="ms"),
            "duration_ms": duration, "billed_ms": billed, "memory_mb": float(memory), "used_mb": used,
            "init_ms": init, "status": status}))

    make("api", "JSON", 4000, 512)
    make("api", "JSON", 300, 1024, version="3", scale=50.0)
    make("files", "Text", 750, 256, scale=300.0, t1=3600.0)
    make("files", "Text", 750, 512, scale=180.0, t0=3600.0)
    make("sched", "Text", 60, 128, cold_share=0.8, scale=20.0)
    frame = pd.concat(parts, ignore_index=True)
    frame["request_id"] = [f"req-{i:06d}" for i in range(len(frame))]
    return frame, start, end


def generate_snapstart(seed: int = 11) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
    """An hour of two SnapStart functions, ``snapt`` (text) and ``snapj`` (JSON): 400 invocations each, a fifth
    of them restored from the snapshot (Restore Duration and Billed Restore Duration, no Init Duration), the
    billed restore inside Billed Duration for half of them, and a memory change halfway for ``snapj``."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-11-02 08:00:00", tz="UTC")
    parts = []
    for function, fmt, memories in (("snapt", "Text", (1024, 1024)), ("snapj", "JSON", (512, 2048))):
        n = 400
        seconds = np.sort(rng.uniform(0, 3600, n))
        duration = np.round(rng.lognormal(math.log(40.0), 0.4, n), 2)
        status = rng.choice(["ok", "error"], n, p=[0.97, 0.03])
        restored = rng.random(n) < 0.2
        restore = np.where(restored, np.round(rng.uniform(100, 600, n), 2), np.nan)
        billed_restore = np.where(restored, np.ceil(np.nan_to_num(restore) * rng.uniform(0.2, 0.6, n)), np.nan)
        inside = rng.random(n) < 0.5
        billed = np.ceil(duration + np.where(inside, np.nan_to_num(billed_restore), 0.0))
        memory = np.where(seconds < 1800, memories[0], memories[1]).astype(float)
        parts.append(pd.DataFrame({
            "function": function, "log_format": fmt, "version": "$LATEST",
            "time": start + pd.to_timedelta(np.round(seconds * 1000), unit="ms"),
            "duration_ms": duration, "billed_ms": billed, "memory_mb": memory,
            "used_mb": np.minimum(memory, rng.integers(60, 300, n)).astype(float), "init_ms": np.nan,
            "restore_ms": restore, "billed_restore_ms": billed_restore, "status": status}))
    frame = pd.concat(parts, ignore_index=True)
    frame["request_id"] = [f"snap-{i:06d}" for i in range(len(frame))]
    return frame, start, start + pd.Timedelta(hours=1)


def report_events(invocations: pd.DataFrame) -> list[dict]:
    """The same invocations as FilterLogEvents events: REPORT lines in each function's log format."""
    events = []
    for row in invocations.itertuples(index=False):
        stream = f"2025/11/01/[{row.version}]0123456789abcdef"
        millis = int(row.time.value // 1_000_000)
        if row.log_format == "Text":
            line = (f"REPORT RequestId: {row.request_id}\tDuration: {row.duration_ms:.2f} ms\t"
                    f"Billed Duration: {int(row.billed_ms)} ms\tMemory Size: {int(row.memory_mb)} MB\t"
                    f"Max Memory Used: {int(row.used_mb)} MB\t")
            if row.init_ms == row.init_ms:
                line += f"Init Duration: {row.init_ms:.2f} ms\t"
            restore = getattr(row, "restore_ms", float("nan"))
            if restore == restore:     # SnapStart: the order of AWS's documented REPORT line
                line += (f"Restore Duration: {restore:.2f} ms\t"
                         f"Billed Restore Duration: {int(row.billed_restore_ms)} ms\t")
            line += {"ok": "", "error": "Status: error\t", "timeout": "Status: timeout\t",
                     "out_of_memory": "Status: error\tError Type: Runtime.OutOfMemory\t"}[row.status]
        else:
            import json
            metrics = {"durationMs": row.duration_ms, "billedDurationMs": int(row.billed_ms),
                       "memorySizeMB": int(row.memory_mb), "maxMemoryUsedMB": int(row.used_mb)}
            if row.init_ms == row.init_ms:
                metrics["initDurationMs"] = row.init_ms
            if getattr(row, "restore_ms", float("nan")) == getattr(row, "restore_ms", float("nan")):
                metrics |= {"restoreDurationMs": row.restore_ms, "billedRestoreDurationMs": int(row.billed_restore_ms)}
            record = {"requestId": row.request_id, "metrics": metrics,
                      "status": {"ok": "success", "out_of_memory": "error"}.get(row.status, row.status)}
            if row.status == "out_of_memory":
                record["errorType"] = "Runtime.OutOfMemory"
            line = json.dumps({"time": row.time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "type": "platform.report",
                               "record": record}, separators=(",", ":"))
        events.append({"message": line, "timestamp": millis, "logStreamName": stream, "function": row.function})
    return events

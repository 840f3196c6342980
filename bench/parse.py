"""Benchmark: workbook.logs.parse_reports on 1,000,000 REPORT records, beside a re loop, polars and DuckDB.

Three inputs, each a Python list of strings as FilterLogEvents gives them:
* text: Lambda's text REPORT lines (tabs), with Init Duration, SnapStart restores, timeouts and
  XRAY lines mixed in;
* json: ``platform.report`` records (logFormat JSON);
* export: the text lines after a CloudWatch Logs export timestamp (``2024-01-01T12:00:00.000Z REPORT ...``);
* spaced: the text lines as a console copy leaves them (every tab four spaces); the re loop,
  polars and DuckDB use the same pattern with ``\\s+`` between fields.

Every contender extracts the same fields from the same lines in the same run: request id,
duration, billed duration, memory size, max memory used, init duration, restore duration,
billed restore duration, status, error type and X-Ray trace id (and, in JSON and export, the
time), typed (numbers as numbers), into its own frame:
* ``re`` loop: one compiled pattern per line, building a list of dicts, then a pandas DataFrame
  (the baseline the target is set against: parse_reports >= 3x);
* polars: ``str.extract_groups`` (text), ``str.json_decode`` with a schema (JSON), then casts;
* DuckDB: ``regexp_extract`` with named groups (text), ``json_extract_string`` over paths (JSON),
  then casts, fetched as an Arrow table.
polars and DuckDB are not in the dev extra (polars' runtime is ~170 MB, DuckDB ~30 MB): install
them with ``.venv/bin/pip install polars duckdb``; without them their columns say so.

Wall-clock time is the figure that counts (best of ``--repeat``); CPU time (all threads) is printed
too because the machine is shared. Peak memory of parse_reports is measured in a separate pass:
Python allocations (tracemalloc) plus Arrow's memory pool high-water mark. Prints figures; asserts
nothing about time.

    .venv/bin/python bench/parse.py [--lines 1000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
import pyarrow as pa

from workbook.logs import parse_reports

try:
    import polars as pl
except ImportError:  # optional: see the docstring
    pl = None
try:
    import duckdb
except ImportError:  # optional: see the docstring
    duckdb = None


def make_text(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        duration = rng.uniform(1, 900)
        line = (
            f"REPORT RequestId: {i:08x}-e9a3-11e6-939a-754dd98c7be3\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms\tMemory Size: 512 MB\tMax Memory Used: {rng.randint(60, 200)} MB\t"
        )
        if i % 50 == 0:
            line += f"Init Duration: {rng.uniform(100, 900):.2f} ms\t"
        elif i % 200 == 1:
            line += f"Restore Duration: {rng.uniform(100, 900):.2f} ms\tBilled Restore Duration: {rng.randint(10, 300)} ms\t"
        if i % 500 == 0:
            line += "Status: timeout"
        if i % 10 == 0:
            line += f"\nXRAY TraceId: 1-5e1b4151-{i:024x}\tSegmentId: 0a1b2c3d4e5f6789\tSampled: true\t"
        lines.append(line)
    return lines


def make_export(n: int, seed: int = 7) -> list[str]:
    base = 1_700_000_000_000
    return [f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime((base + i) // 1000))}.{(base + i) % 1000:03d}Z {line}"
            for i, line in enumerate(make_text(n, seed))]


def make_spaced(n: int, seed: int = 7) -> list[str]:
    """The text lines as a console copy leaves them: every tab four spaces."""
    return [line.replace("\t", "    ") for line in make_text(n, seed)]


def make_json(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        duration = rng.uniform(1, 900)
        metrics = {
            "durationMs": round(duration, 3),
            "billedDurationMs": int(duration) + 1,
            "memorySizeMB": 512,
            "maxMemoryUsedMB": rng.randint(60, 200),
        }
        if i % 50 == 0:
            metrics["initDurationMs"] = round(rng.uniform(100, 900), 3)
        elif i % 200 == 1:
            metrics["restoreDurationMs"] = round(rng.uniform(100, 900), 3)
            metrics["billedRestoreDurationMs"] = rng.randint(10, 300)
        record = {"requestId": f"{i:08x}-e9a3-11e6-939a-754dd98c7be3", "metrics": metrics,
                  "status": "timeout" if i % 500 == 0 else "success"}
        lines.append(json.dumps({"time": "2025-11-01T10:00:00.000Z", "type": "platform.report", "record": record},
                                separators=(",", ":")))
    return lines


# ---------------------------------------------------------------------------------------------
# The contenders. Each returns its frame; the fields and types are the same for all.
# ---------------------------------------------------------------------------------------------
_TEXT_RE = (r"(?:(?P<time>\S+Z) )?REPORT RequestId: (?P<request_id>\S+)\tDuration: (?P<duration_ms>[\d.]+) ms\t"
            r"Billed Duration: (?P<billed_duration_ms>\d+) ms\tMemory Size: (?P<memory_size_mb>\d+) MB\t"
            r"Max Memory Used: (?P<max_memory_used_mb>\d+) MB(?:\tInit Duration: (?P<init_duration_ms>[\d.]+) ms)?"
            r"(?:\tRestore Duration: (?P<restore_duration_ms>[\d.]+) ms\tBilled Restore Duration: "
            r"(?P<billed_restore_duration_ms>\d+) ms)?(?:\tStatus: (?P<status>\w+))?(?:\tError Type: (?P<error_type>\S+))?"
            r"(?:.*?XRAY TraceId: (?P<xray_trace_id>[\w-]+))?")
_SPACED_RE = _TEXT_RE.replace("\\t", "\\s+")   # the same pattern, any whitespace between fields
_FLOATS = ("duration_ms", "init_duration_ms", "restore_duration_ms")
_INTS = ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb", "billed_restore_duration_ms")
_TEXT = re.compile(_TEXT_RE, re.S)
_SPACED = re.compile(_SPACED_RE, re.S)


def re_text(lines: list[str], pattern: re.Pattern = _TEXT) -> pd.DataFrame:
    rows = []
    for line in lines:
        m = pattern.match(line)
        if not m:
            continue
        row = m.groupdict()
        for name in _FLOATS:
            row[name] = float(row[name]) if row[name] else None
        for name in _INTS:
            row[name] = int(row[name]) if row[name] else None
        rows.append(row)
    return pd.DataFrame(rows)


_JSON_RE = {name: re.compile(pattern) for name, pattern in {
    "request_id": r'"requestId":"([^"]+)"', "duration_ms": r'"durationMs":([0-9.]+)',
    "billed_duration_ms": r'"billedDurationMs":([0-9]+)', "memory_size_mb": r'"memorySizeMB":([0-9]+)',
    "max_memory_used_mb": r'"maxMemoryUsedMB":([0-9]+)', "init_duration_ms": r'"initDurationMs":([0-9.]+)',
    "restore_duration_ms": r'"restoreDurationMs":([0-9.]+)', "billed_restore_duration_ms": r'"billedRestoreDurationMs":([0-9]+)',
    "status": r'"status":"([^"]+)"', "error_type": r'"errorType":"([^"]+)"', "xray_trace_id": r'Root=([\w-]+)',
    "time": r'"time":"([^"]+)"',
}.items()}


def re_json(lines: list[str]) -> pd.DataFrame:
    rows = []
    for line in lines:
        row = {}
        for name, pattern in _JSON_RE.items():
            m = pattern.search(line)
            row[name] = m.group(1) if m else None
        if row["request_id"] is None:
            continue
        for name in _FLOATS:
            row[name] = float(row[name]) if row[name] else None
        for name in _INTS:
            row[name] = int(row[name]) if row[name] else None
        rows.append(row)
    return pd.DataFrame(rows)


def _polars_types(frame):
    return frame.with_columns([pl.col(n).cast(pl.Float64) for n in _FLOATS] + [pl.col(n).cast(pl.Int64) for n in _INTS])


def re_spaced(lines: list[str]) -> pd.DataFrame:
    return re_text(lines, _SPACED)


def polars_text(lines: list[str], source: str = _TEXT_RE):
    groups = pl.Series("line", lines).str.extract_groups(source.replace("(?:.*?XRAY", "(?s:.*?XRAY"))
    return _polars_types(groups.struct.unnest().filter(pl.col("request_id").is_not_null()))


def polars_json(lines: list[str]):
    metrics = pl.Struct({"durationMs": pl.Float64, "billedDurationMs": pl.Int64, "memorySizeMB": pl.Int64,
                         "maxMemoryUsedMB": pl.Int64, "initDurationMs": pl.Float64, "restoreDurationMs": pl.Float64,
                         "billedRestoreDurationMs": pl.Int64})
    record = pl.Struct({"requestId": pl.String, "metrics": metrics, "status": pl.String, "errorType": pl.String,
                        "tracing": pl.Struct({"value": pl.String})})
    doc = pl.Series("line", lines).str.json_decode(pl.Struct({"time": pl.String, "type": pl.String, "record": record}))
    frame = doc.struct.unnest()
    rec = pl.col("record")
    return frame.select(
        pl.col("time"), rec.struct.field("requestId").alias("request_id"),
        *[rec.struct.field("metrics").struct.field(key).alias(name) for key, name in (
            ("durationMs", "duration_ms"), ("billedDurationMs", "billed_duration_ms"), ("memorySizeMB", "memory_size_mb"),
            ("maxMemoryUsedMB", "max_memory_used_mb"), ("initDurationMs", "init_duration_ms"),
            ("restoreDurationMs", "restore_duration_ms"), ("billedRestoreDurationMs", "billed_restore_duration_ms"))],
        rec.struct.field("status").alias("status"), rec.struct.field("errorType").alias("error_type"),
        rec.struct.field("tracing").struct.field("value").str.extract(r"Root=([\w-]+)").alias("xray_trace_id"),
    )


def polars_spaced(lines: list[str]):
    return polars_text(lines, _SPACED_RE)


def _duckdb_query(lines: list[str], select: str):
    lines_table = pa.table({"line": pa.array(lines, type=pa.large_string())})  # noqa: F841 - DuckDB reads it by name
    return duckdb.connect().sql(select).to_arrow_table()


def duckdb_text(lines: list[str], source: str = _TEXT_RE):
    names = re.findall(r"\?P<(\w+)>", source)   # the groups, in order
    pattern = re.sub(r"\?P<\w+>", "", source).replace("'", "''").replace("(?:.*?XRAY", "(?s:.*?XRAY")
    casts = ", ".join([f"NULLIF(f.{n}, '')::DOUBLE AS {n}" if n in _FLOATS else f"NULLIF(f.{n}, '')::BIGINT AS {n}"
                       if n in _INTS else f"NULLIF(f.{n}, '') AS {n}" for n in names])
    return _duckdb_query(lines, f"SELECT {casts} FROM (SELECT regexp_extract(line, '{pattern}', {names!r}) AS f "
                                f"FROM lines_table) WHERE f.request_id <> ''")


def duckdb_spaced(lines: list[str]):
    return duckdb_text(lines, _SPACED_RE)


_JSON_PATHS = {"time": "$.time", "request_id": "$.record.requestId", "duration_ms": "$.record.metrics.durationMs",
               "billed_duration_ms": "$.record.metrics.billedDurationMs", "memory_size_mb": "$.record.metrics.memorySizeMB",
               "max_memory_used_mb": "$.record.metrics.maxMemoryUsedMB",
               "init_duration_ms": "$.record.metrics.initDurationMs",
               "restore_duration_ms": "$.record.metrics.restoreDurationMs",
               "billed_restore_duration_ms": "$.record.metrics.billedRestoreDurationMs", "status": "$.record.status",
               "error_type": "$.record.errorType", "xray_trace_id": "$.record.tracing.value"}


def duckdb_json(lines: list[str]):
    paths = list(_JSON_PATHS.values())
    columns = []
    for i, name in enumerate(_JSON_PATHS, start=1):
        value = f"v[{i}]"
        if name in _FLOATS:
            value += "::DOUBLE"
        elif name in _INTS:
            value += "::BIGINT"
        elif name == "xray_trace_id":
            value = f"regexp_extract({value}, 'Root=([\\w-]+)', 1)"
        columns.append(f"{value} AS {name}")
    return _duckdb_query(lines, f"SELECT {', '.join(columns)} FROM (SELECT json_extract_string(line, {paths!r}) AS v "
                                f"FROM lines_table)")


# ---------------------------------------------------------------------------------------------
# Measuring.
# ---------------------------------------------------------------------------------------------
def timed(fn, lines, repeat: int):
    """Best wall-clock and best CPU seconds (all threads) of ``repeat`` runs, and the last result."""
    best, best_cpu = float("inf"), float("inf")
    out = None
    for _ in range(repeat):
        out = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(lines)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu, out


def peak_memory_mib(fn, lines) -> float:
    gc.collect()
    pool = pa.default_memory_pool()
    arrow_before = pool.max_memory()
    tracemalloc.start()
    out = fn(lines)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrow_peak = max(pool.max_memory() - arrow_before, 0) if pool.max_memory() is not None else 0
    del out
    return (peak + arrow_peak) / 2**20


INPUTS = {  # name -> (make, re baseline, polars, duckdb)
    "text": (make_text, re_text, "polars_text", "duckdb_text"),
    "json": (make_json, re_json, "polars_json", "duckdb_json"),
    "export": (make_export, re_text, "polars_text", "duckdb_text"),
    "spaced": (make_spaced, re_spaced, "polars_spaced", "duckdb_spaced"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    args = parser.parse_args()
    print(f"parse_reports beside a re loop, polars {pl.__version__ if pl else '(not installed)'} and DuckDB "
          f"{duckdb.__version__ if duckdb else '(not installed)'} on {args.lines:,} lines (best of {args.repeat}); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    for label in args.inputs:
        make, baseline, polars_fn, duckdb_fn = INPUTS[label]
        lines = make(args.lines)
        t_base, c_base, base = timed(baseline, lines, args.repeat)
        t_ours, c_ours, ours = timed(parse_reports, lines, args.repeat)
        assert len(ours) == len(base) == args.lines and ours.attrs["malformed"] == 0, (len(ours), len(base))
        del base, ours
        others = []
        for name, module, fn_name in (("polars", pl, polars_fn), ("DuckDB", duckdb, duckdb_fn)):
            if module is None:
                others.append(f"{name} not installed")
                continue
            t, c, out = timed(globals()[fn_name], lines, args.repeat)
            assert len(out) == args.lines, (name, len(out))
            others.append(f"{name} {t:5.2f} s (cpu {c:5.2f} s)")
            del out
        mem = peak_memory_mib(parse_reports, lines)
        print(f"  {label:6s}: re loop {t_base:6.2f} s | parse_reports {t_ours:5.2f} s ({args.lines / t_ours:10,.0f} lines/s) | "
              f"{' | '.join(others)} | speed-up over re {t_base / t_ours:4.1f}x (target >= 3x) | "
              f"peak {mem:4.0f} MiB (target < 1024)")
        print(f"          CPU time: re loop {c_base:6.2f} s | parse_reports {c_ours:5.2f} s (all threads)")
        del lines
    print(f"  load average {os.getloadavg()[0]:.1f} at the end (other work on the machine slows every contender)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

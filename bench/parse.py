"""Benchmark: workbook.logs.parse_reports on 1,000,000 REPORT lines, text and JSON.

Baselines, measured in the same run:
* text: a plain ``re`` loop building a list of dicts (then a DataFrame);
* JSON: a plain ``re`` loop building a list of dicts (then a DataFrame), as for text; and,
  stricter, a plain ``json.loads`` loop building a list of dicts.

Wall-clock time is the figure that counts; CPU time (all threads) is printed too because the
machine is shared and wall-clock suffers from other people's work. Peak memory of each parse
is measured in a separate pass: Python allocations (tracemalloc)
plus Arrow's memory pool high-water mark. Prints figures; asserts nothing about time.

    .venv/bin/python bench/parse.py [--lines 1000000]
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import re
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd

from workbook.logs import parse_reports


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
        if i % 500 == 0:
            line += "Status: timeout"
        if i % 10 == 0:
            line += f"\nXRAY TraceId: 1-5e1b4151-{i:024x}\tSegmentId: 0a1b2c3d4e5f6789\tSampled: true\t"
        lines.append(line)
    return lines


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
        record = {"requestId": f"{i:08x}-e9a3-11e6-939a-754dd98c7be3", "metrics": metrics,
                  "status": "timeout" if i % 500 == 0 else "success"}
        lines.append(json.dumps({"time": "2025-11-01T10:00:00.000Z", "type": "platform.report", "record": record},
                                separators=(",", ":")))
    return lines


_BASELINE_RE = re.compile(
    r"REPORT RequestId: (\S+)\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB\t"
    r"Max Memory Used: (\d+) MB(?:\tInit Duration: ([\d.]+) ms)?(?:\tStatus: (\w+))?"
)
_XRAY_RE = re.compile(r"XRAY TraceId: (\S+)")


def baseline_text(lines: list[str]) -> pd.DataFrame:
    rows = []
    for line in lines:
        m = _BASELINE_RE.match(line)
        if not m:
            continue
        x = _XRAY_RE.search(line)
        rows.append({
            "request_id": m.group(1), "duration_ms": float(m.group(2)), "billed_duration_ms": int(m.group(3)),
            "memory_size_mb": int(m.group(4)), "max_memory_used_mb": int(m.group(5)),
            "init_duration_ms": float(m.group(6)) if m.group(6) else None,
            "status": m.group(7) or "ok", "xray_trace_id": x.group(1) if x else None,
        })
    return pd.DataFrame(rows)


_JSON_RE = {name: re.compile(pattern) for name, pattern in {
    "request_id": r'"requestId":"([^"]+)"', "duration_ms": r'"durationMs":([0-9.]+)',
    "billed_duration_ms": r'"billedDurationMs":([0-9]+)', "memory_size_mb": r'"memorySizeMB":([0-9]+)',
    "max_memory_used_mb": r'"maxMemoryUsedMB":([0-9]+)', "init_duration_ms": r'"initDurationMs":([0-9.]+)',
    "status": r'"status":"([^"]+)"', "timestamp": r'"time":"([^"]+)"',
}.items()}


def baseline_json_re(lines: list[str]) -> pd.DataFrame:
    """The brief's baseline for JSON too: a plain ``re`` loop building a list of dicts."""
    rows = []
    for line in lines:
        row = {}
        for name, pattern in _JSON_RE.items():
            m = pattern.search(line)
            row[name] = m.group(1) if m else None
        if row["request_id"] is None:
            continue
        for name in ("duration_ms", "init_duration_ms"):
            row[name] = float(row[name]) if row[name] else None
        for name in ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb"):
            row[name] = int(row[name])
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_json(lines: list[str]) -> pd.DataFrame:
    """A stricter baseline for JSON: a plain ``json.loads`` loop building a list of dicts."""
    rows = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        record = doc["record"]
        metrics = record["metrics"]
        rows.append({
            "request_id": record["requestId"], "duration_ms": metrics["durationMs"],
            "billed_duration_ms": metrics["billedDurationMs"], "memory_size_mb": metrics["memorySizeMB"],
            "max_memory_used_mb": metrics["maxMemoryUsedMB"], "init_duration_ms": metrics.get("initDurationMs"),
            "status": record.get("status"), "timestamp": doc.get("time"),
        })
    return pd.DataFrame(rows)


def timed(fn, lines, repeat: int):
    """Best wall-clock and best CPU seconds (all threads) of ``repeat`` runs."""
    best, best_cpu = float("inf"), float("inf")
    out = None
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(lines)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu, out


def peak_memory_mib(fn, lines) -> float:
    import pyarrow as pa

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    import os

    print(f"parse_reports vs baseline on {args.lines:,} lines (best of {args.repeat}); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    for label, make, baseline in (("text", make_text, baseline_text), ("json", make_json, baseline_json_re),
                                  ("json (json.loads baseline)", make_json, baseline_json)):
        lines = make(args.lines)
        t_base, c_base, base = timed(baseline, lines, args.repeat)
        t_ours, c_ours, ours = timed(parse_reports, lines, args.repeat)
        assert len(ours) == len(base) == args.lines, (len(ours), len(base))
        mem = peak_memory_mib(parse_reports, lines)
        print(
            f"  {label}: baseline {t_base:6.2f} s ({args.lines / t_base:10,.0f} lines/s) | "
            f"parse_reports {t_ours:6.2f} s ({args.lines / t_ours:10,.0f} lines/s) | "
            f"speed-up {t_base / t_ours:4.1f}x (target >= 3x) | peak memory {mem:6.0f} MiB (target < 1024)"
        )
        print(f"        CPU time: baseline {c_base:6.2f} s | parse_reports {c_ours:6.2f} s (all threads) | "
              f"{c_base / c_ours:4.1f}x less CPU")
        del lines, base, ours
    print(f"  load average {os.getloadavg()[0]:.1f} at the end (other work on the machine slows both sides)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

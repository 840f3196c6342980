"""Benchmark: start-up of a process that runs notebooks, with and without the deferred rfc3987_syntax.

A fresh interpreter imports what ``workbook run`` imports to run notebooks (``workbook.report.run``:
Papermill, nbformat, jsonschema) and what a kernel imports to record results (scrapbook). Baseline,
in the same interleaved rounds: the same imports with ``rfc3987_syntax`` imported first, as it was
before ``workbook/_deferred.py`` (jsonschema imported it, and it parsed RFC 3987's grammar). Prints
wall and CPU medians; asserts nothing.

    .venv/bin/python bench/startup.py [--rounds 10]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "deferred (workbook first)": "import workbook.report.run, scrapbook",
    "baseline (grammar built)": "import rfc3987_syntax, workbook.report.run, scrapbook",
}


def measure(code: str) -> tuple[float, float]:
    started = time.perf_counter()
    before = os.times()
    subprocess.run([sys.executable, "-c", code], check=True)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return time.perf_counter() - started, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    for _ in range(args.rounds):
        for name, code in CASES.items():
            figures[name].append(measure(code))
    baseline = statistics.median(w for w, _ in figures["baseline (grammar built)"])
    print(f"start-up of a notebook-running process, median of {args.rounds} rounds (load average {os.getloadavg()[0]:.1f})")
    print(f"{'case':28} {'wall s':>8} {'cpu s':>8} {'vs baseline':>12}")
    for name, runs in figures.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:28} {wall:8.2f} {cpu:8.2f} {wall / baseline:11.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

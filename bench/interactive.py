"""Benchmark: what a move of 05-tuning's memory control costs, against the projection alone, in the same run.

A move checks the choice against the params schema (a round-trip patch of ``params/local.yaml``,
validated) and redraws the projection. Figures are medians over ``--runs`` moves, in process, with
2,000 REPORT rows of traffic; the widget's own rendering in the browser is not included.

    .venv/bin/python bench/interactive.py [--runs 30]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import numpy as np
import pandas as pd

from infra import config
from workbook.report import interactive
from workbook.tuning import recommend


def traffic(key: str, n: int, memory_mb: int) -> pd.DataFrame:
    start = pd.Timestamp("2026-12-01T00:00:00Z")
    rng = np.random.default_rng(0)
    durations = rng.lognormal(np.log(400), 0.3, n)
    return pd.DataFrame({"function": key, "timestamp": [start + pd.Timedelta(seconds=i) for i in range(n)],
                         "duration_ms": durations, "billed_duration_ms": np.ceil(durations), "memory_size_mb": memory_mb,
                         "max_memory_used_mb": rng.integers(200, 400, n), "init_duration_ms": np.nan,
                         "cold_start": False, "status": "ok"})


def median_ms(work, runs: int) -> float:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        work(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    settings = config.load("local")
    key = "file-processor"
    data = traffic(key, 2000, settings.function(key).memory_mb)
    recs = recommend.recommend(settings, data, [key])
    sizes = [512 + 64 * (i % 8) for i in range(args.runs)]
    with contextlib.redirect_stdout(io.StringIO()):   # outside a kernel the widgets print their reprs
        panel = interactive.Controls(settings, {}, data, recs)
        panel.function.value = key
        projection = median_ms(lambda i: interactive.project(settings, key, sizes[i], 60, "x86_64", data), args.runs)
        schema = median_ms(lambda i: interactive.candidate(settings, key, sizes[i], 60, "x86_64"), args.runs)
        move = median_ms(lambda i: setattr(panel.memory, "value", sizes[i] if panel.memory.value != sizes[i]
                                           else sizes[i] + 64), args.runs)
    print(f"projection alone (baseline): {projection:.1f} ms median")
    print(f"params schema check of the choice: {schema:.1f} ms median")
    print(f"a memory move (check + projection + redraw): {move:.1f} ms median ({move / projection:.1f}x the projection)")


if __name__ == "__main__":
    main()

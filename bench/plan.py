"""Benchmark: `workbook plan --env prod` against a bare `import pulumi_aws`, measured in the same run.

Each figure is the median wall time of fresh interpreters (so imports are cold in Python's sense;
the OS page cache is warm after the first run, as on a developer's machine).

    .venv/bin/python bench/plan.py [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    cases = {
        "bare interpreter (python -c pass)": [python, "-c", "pass"],
        "baseline: import pulumi_aws": [python, "-c", "import pulumi_aws"],
        "workbook plan --env prod --format json": [python, "-m", "workbook.cli", "plan", "--env", "prod", "--format", "json"],
        "workbook plan --env local --format json": [python, "-m", "workbook.cli", "plan", "--env", "local", "--format", "json"],
    }
    timed(cases["baseline: import pulumi_aws"], 1)  # warm the page cache once
    results = {name: timed(command, args.runs) for name, command in cases.items()}
    baseline = statistics.median(results["baseline: import pulumi_aws"])
    print("| case | median (s) | min (s) | vs import pulumi_aws |")
    print("|---|---:|---:|---:|")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"| {name} | {median:.2f} | {min(samples):.2f} | {median / baseline:.1f}x |")


if __name__ == "__main__":
    main()

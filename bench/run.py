"""Benchmark: the whole `workbook run --env local` from a cold start, against Papermill running empty notebooks.

Both are measured in the same run. The baseline executes as many empty notebooks as the run has,
through Papermill with the same kernel, so the difference is the workbook's own work: starting the
local environment, the notebooks' loads and analyses, and the export. Traffic is reported apart
(its length is a setting). Target: overhead over the baseline, traffic excluded, at most 60 s.

    .venv/bin/python bench/run.py [--traffic-seconds 30]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def baseline(count: int) -> float:
    import papermill as pm

    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        cell = nbformat.v4.new_code_cell("env = 'local'")
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
        nbformat.write(nb, str(empty))
        started = time.perf_counter()
        for index in range(count):
            pm.execute_notebook(str(empty), str(Path(folder) / f"out-{index}.ipynb"), parameters={"env": "local"},
                                kernel_name="python3", progress_bar=False)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traffic-seconds", type=float, default=30.0)
    args = parser.parse_args()
    from workbook import report

    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as outputs:
        env = {**os.environ, "WORKBOOK_STATE_DIR": state, "WORKBOOK_OUTPUTS_DIR": outputs}
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "workbook.cli", "run", "--env", "local",
                                 "--traffic-seconds", str(args.traffic_seconds)],
                                cwd=ROOT, env=env, capture_output=True, text=True)
        total = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"workbook run failed:\n{result.stderr[-3000:]}")
        folder = Path(result.stdout.strip().splitlines()[-1])
        phases = json.loads((folder / "summary.json").read_text())["phases_s"]
    empty = baseline(len(report.RUN_ORDER))
    traffic = phases.get("traffic", 0.0)
    overhead = total - traffic - empty
    print("| phase | seconds |")
    print("|---|---:|")
    for name, seconds in phases.items():
        print(f"| {name} | {seconds:.1f} |")
    print(f"| other (CLI start, plan checks, stop) | {total - sum(phases.values()):.1f} |")
    print(f"| **total `workbook run --env local`** | **{total:.1f}** |")
    print(f"| baseline: Papermill, {len(report.RUN_ORDER)} empty notebooks | {empty:.1f} |")
    verdict = "meets" if overhead <= 60 else "misses"
    print(f"\noverhead over the baseline, traffic excluded: {overhead:.1f} s ({verdict} the 60 s target)")


if __name__ == "__main__":
    main()

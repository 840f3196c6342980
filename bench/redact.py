"""Benchmark: redacting a run folder, against reading and rewriting the same files.

The folder is a real run's (``--folder``, e.g. ``outputs/local/latest``), copied to a temporary
folder for each repeat, with ``--secrets`` random secrets known (the local environment holds 4-6;
an AWS run adds the stack's). Baseline, in the same run: reading every file and writing it back
unchanged (what any pass over the folder costs). Prints CPU and wall-clock medians; asserts nothing.

    .venv/bin/python bench/redact.py --folder outputs/local/latest [--secrets 30] [--repeat 3]
"""
from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbook.report.redact import Redactor, redact_folder


def _timed(action) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def _rewrite(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--secrets", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = args.folder.resolve()
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    values = [secrets.token_urlsafe(32) for _ in range(args.secrets - 1)] + ['a pass & <phrase> "quoted" 01']
    built = _timed(lambda: Redactor(values))
    redactor = Redactor(values)
    runs: dict[str, list[tuple[float, float]]] = {"read and rewrite (baseline)": [], "redact_folder": []}
    for _ in range(args.repeat):
        for name, action in (("read and rewrite (baseline)", _rewrite),
                             ("redact_folder", lambda f: redact_folder(f, redactor))):
            with tempfile.TemporaryDirectory() as scratch:
                copy = Path(scratch) / "run"
                shutil.copytree(source, copy)
                runs[name].append(_timed(lambda copy=copy, action=action: action(copy)))
    print(f"folder {source.name}: {sum(1 for p in source.rglob('*') if p.is_file())} files, {size / 2**20:.2f} MiB; "
          f"{args.secrets} secrets ({len(redactor._forms)} forms); index built in {built[0] * 1000:.0f} ms")
    for name, timings in runs.items():
        wall = statistics.median(t[0] for t in timings)
        cpu = statistics.median(t[1] for t in timings)
        print(f"{name:28s} wall {wall:6.2f} s   cpu {cpu:6.2f} s   ({size / 2**20 / max(cpu, 1e-9):.1f} MiB/s cpu)")


if __name__ == "__main__":
    main()

"""Runs: one folder per run under ``outputs/<env>/<UTC timestamp>/``, with a ``latest`` link.

The notebooks (issue 6) land here; until then a run records the offline plan of the environment.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from infra import config

OUTPUTS_DIR = Path(os.environ.get("WORKBOOK_OUTPUTS_DIR", config.REPO_ROOT / "outputs"))


def new_run_folder(env: str, outputs_dir: Path | None = None, now: datetime | None = None) -> Path:
    """Create ``outputs/<env>/<UTC timestamp>/`` and point ``outputs/<env>/latest`` at it."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    base = (outputs_dir or OUTPUTS_DIR) / env
    folder = base / stamp
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    folder.mkdir(parents=True)
    latest = base / "latest"
    tmp = base / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(folder.name)
    tmp.replace(latest)   # atomic switch
    return folder


def run(env: str, outputs_dir: Path | None = None) -> Path:
    """The main job for one environment; returns the run folder."""
    from workbook.plan import offline_plan

    settings = config.load(env)          # fails fast, before any work, on bad params
    folder = new_run_folder(env, outputs_dir)
    print(f"[1/1] offline plan of {env} ...", file=sys.stderr, flush=True)
    plan = offline_plan(env, settings)
    (folder / "plan.json").write_text(json.dumps(plan.to_dict(), indent=2, sort_keys=True))
    summary = {
        "env": env,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "plan": {"resources": len(plan.resources), "outputs": sorted(plan.outputs)},
        "deployed": False,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run the main job for an environment and print the run folder")
    parser.add_argument("--env", required=True)
    parser.set_defaults(func=lambda args: print(run(args.env)) or 0)

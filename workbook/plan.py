"""The offline plan: the stack's program run under Pulumi's mocks. No CLI, no AWS.

``offline_plan(env)`` returns every resource with its inputs and the stack outputs. Where the
environment deploys its foundation standalone, the foundation program is planned first and its
resources are part of the plan (``"stack": "foundation"``); otherwise its outputs only stand in
for the referenced platform stacks, so the plan is complete either way.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from infra import config
from infra.config import Settings

_LOCK = threading.Lock()   # Pulumi's runtime settings are process-global: one plan at a time.


@dataclass
class Plan:
    """Resources (type, name, inputs, stack) and outputs of one environment's stacks."""

    env: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    foundation_outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"resources": self.resources, "outputs": self.outputs}

    def of_type(self, type_token: str, stack: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_token and (stack is None or r["stack"] == stack)]

    def named(self, name: str, type_token: str | None = None) -> dict[str, Any]:
        matches = [r for r in self.resources if r["name"] == name and (type_token is None or r["type"] == type_token)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}" + (f" of type {type_token}" if type_token else ""))
        return matches[0]

    def table(self):
        """One row per resource: stack, type, name, and the physical name where set."""
        import pandas as pd

        rows = [{
            "stack": r["stack"],
            "type": r["type"],
            "name": r["name"],
            "physical_name": r["inputs"].get("name") or r["inputs"].get("bucket") or r["inputs"].get("layerName") or "",
        } for r in self.resources]
        return pd.DataFrame(rows, columns=["stack", "type", "name", "physical_name"])


def offline_plan(env: str, settings: Settings | None = None) -> Plan:
    """Plan environment ``env`` (or the given settings) under mocks."""
    from infra import artifacts, compute, foundation

    settings = settings or config.load(env)
    plan = Plan(env=settings.env)
    with _LOCK:
        previous = artifacts.OFFLINE
        artifacts.OFFLINE = True
        try:
            foundation_resources, foundation_outputs = _run(
                settings, "foundation", lambda: foundation.build(settings), {})
            stack_outputs = {name: foundation_outputs for name in settings.params.foundation.stacks.model_dump().values()}
            compute_resources, compute_outputs = _run(
                settings, "compute", lambda: compute.build(settings), stack_outputs)
        finally:
            artifacts.OFFLINE = previous
    if settings.params.foundation.standalone:
        plan.resources += [{**r, "stack": "foundation"} for r in foundation_resources]
    plan.resources += [{**r, "stack": "compute"} for r in compute_resources]
    plan.outputs = compute_outputs
    plan.foundation_outputs = foundation_outputs
    return plan


def _run(settings: Settings, stack: str, program: Callable[[], dict[str, Any]],
         stack_outputs: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one program under fresh mocks and resolve its outputs."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from infra.mocks import PlanMocks

    mocks = PlanMocks(settings.params.aws_region, stack_outputs)
    project = f"{settings.params.project_name}-{stack}"
    pulumi.runtime.set_mocks(mocks, project=project, stack=settings.env, preview=False)
    resolved: dict[str, Any] = {}

    def body() -> None:
        outputs = program()
        resolved.update(_sync_await(pulumi.Output.from_input(outputs).future()) or {})

    _sync_await(run_pulumi_func(body))
    return _plain(mocks.resources), _plain(resolved)


# Inputs whose values are secret even in a plan (mock values, but a plan is shared like a real one).
SECRET_INPUTS = frozenset({"secretString", "secretBinary", "password", "masterPassword"})


def _plain(value: Any) -> Any:
    """Inputs as JSON-friendly values: assets become paths, whole floats ints, secrets masked."""
    import pulumi

    if isinstance(value, dict):
        return {k: ("[secret]" if k in SECRET_INPUTS else _plain(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.FileAsset):
        return {"asset": value.path}
    if isinstance(value, pulumi.FileArchive):
        return {"archive": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {k: _plain(v) for k, v in value.assets.items()}}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# -- CLI ---------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="the offline plan: every resource and output, under Pulumi's mocks (no CLI, no AWS)")
    parser.add_argument("--env", required=True, help="environment: a params/<env>.yaml file")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    plan = offline_plan(args.env)
    if args.format == "json":
        json.dump(plan.to_dict(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    table = plan.table()
    widths = {column: max(len(column), *(len(str(v)) for v in table[column])) for column in table.columns}
    print("  ".join(column.ljust(widths[column]) for column in table.columns))
    for row in table.itertuples(index=False):
        print("  ".join(str(value).ljust(widths[column]) for column, value in zip(table.columns, row)).rstrip())
    counts = table.groupby("stack").size().to_dict()
    print(f"\nOffline plan for {args.env}: {len(table)} resources "
          f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); nothing was deployed.")
    print("Outputs:")
    for name, value in sorted(plan.outputs.items()):
        print(f"  {name} = {json.dumps(value) if not isinstance(value, str) else value}")
    return 0

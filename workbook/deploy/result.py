"""What a notebook calls to deploy: the Automation API when the Pulumi CLI is installed, else the offline plan.

``deploy_or_plan`` returns a ``Result`` whose ``mode`` says which, and whose ``message`` says in
one sentence what happened, plainly saying when it is only a plan.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pandas as pd

from infra.config import Settings
from workbook.deploy.errors import INSTALL_URL, ProdSafetyError, StackNotFound
from workbook.deploy.operations import (
    SUMMARY_COLUMNS,
    Echo,
    ProgressFn,
    Run,
    default_echo,
    describe_counts,
    outputs,
    preview,
    up,
)
from workbook.deploy.plan import Plan, offline_plan
from workbook.deploy.stacks import Operation, cli_available, settings_of


class Mode(str, Enum):
    """How ``deploy_or_plan`` produced its result."""

    AUTOMATION = "automation"
    OFFLINE_PLAN = "offline-plan"


@dataclass
class Result:
    """What a notebook shows: how it was produced, the summary, the outputs and one plain sentence."""

    env: str
    operation: str
    mode: Mode
    summary: pd.DataFrame       # stack, operation, type, count
    resources: pd.DataFrame     # per resource: stack, operation, type, name
    outputs: dict[str, Any]
    message: str
    applied: bool = False
    run: Run | None = None
    plan: Plan | None = None

    def _repr_markdown_(self) -> str:   # Jupyter shows the sentence, not the dataclass
        return f"**{self.mode.value}** — {self.message}"

    def to_record(self) -> dict[str, Any]:
        """JSON-friendly: what a notebook records (sb.glue) and the next run diffs against."""
        return {
            "env": self.env, "operation": self.operation, "mode": self.mode.value, "message": self.message,
            "applied": self.applied, "outputs": json.loads(json.dumps(self.outputs, default=str)),
            "summary": self.summary.to_dict(orient="records"),
            "resources": self.resources.to_dict(orient="records"),
        }


def plan_summary(plan: Plan) -> pd.DataFrame:
    """The offline plan as a change summary: one row per stack and resource type, operation ``plan``."""
    table = plan.table()
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary = table.groupby(["stack", "type"]).size().reset_index(name="count")
    summary.insert(1, "operation", "plan")
    return summary[SUMMARY_COLUMNS]


def deploy_or_plan(env: str | Settings, operation: str = "preview", approve: bool = False, *,
                   echo: Echo | None = default_echo, progress: ProgressFn | None = None) -> Result:
    """Preview or deploy through the Automation API when the Pulumi CLI is installed; else the offline plan.

    ``.mode`` says which ("automation" or "offline-plan") and ``.message`` says in one sentence what
    happened, plainly saying when it is only a plan. A prod ``up`` without ``approve=True`` returns the
    preview with ``applied=False`` instead of raising.
    """
    op = Operation(operation)
    if op not in (Operation.PREVIEW, Operation.UP):
        raise ValueError(f"operation must be 'preview' or 'up', not {operation!r}")
    settings = settings_of(env)
    if not cli_available():
        plan = offline_plan(settings.env, settings)
        summary = plan_summary(plan)
        resources = plan.table().assign(operation="plan")[["stack", "operation", "type", "name"]]
        verb = "deployed" if op is Operation.UP else "previewed"
        message = (f"Only a plan: the Pulumi CLI is not installed, so nothing was {verb}; these {len(resources)} "
                   f"resources and their outputs are what the {settings.env} stacks would hold, computed offline "
                   f"under Pulumi's mocks (install the CLI from {INSTALL_URL} to deploy).")
        return Result(settings.env, op.value, Mode.OFFLINE_PLAN, summary, resources, dict(plan.outputs), message,
                      plan=plan)
    if op is Operation.PREVIEW:
        run = preview(settings, echo=echo, progress=progress)
        message = (f"Preview of {settings.env} against its deployed state: "
                   f"{describe_counts(run.counts())}; nothing was changed.")
        return Result(settings.env, op.value, Mode.AUTOMATION, run.summary, run.changes, _current_outputs(settings),
                      message, run=run)
    try:
        run = up(settings, approve=approve, echo=echo, progress=progress)
    except ProdSafetyError as exc:
        shown = exc.preview or Run(env=settings.env, operation="preview")
        message = (f"Previewed prod only ({describe_counts(shown.counts())}); nothing was applied because an up "
                   "in prod needs approve=True.")
        return Result(settings.env, op.value, Mode.AUTOMATION, shown.summary, shown.changes,
                      _current_outputs(settings), message, applied=False, run=shown)
    message = f"Deployed {settings.env}: {describe_counts(run.counts())}."
    return Result(settings.env, op.value, Mode.AUTOMATION, run.summary, run.changes, run.outputs, message,
                  applied=True, run=run)


def _current_outputs(settings: Settings) -> dict[str, Any]:
    """The compute stack's current outputs, or {} when it has never been deployed."""
    try:
        return outputs(settings)
    except StackNotFound:
        return {}



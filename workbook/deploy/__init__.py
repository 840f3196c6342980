"""Deploy: the Automation API (stacks, the engine off the event loop, operations, error rules, diffs) and the offline plan.

Modules, in the order the data flows:
    plan        the offline plan: the stack's program under Pulumi's mocks (no CLI, no AWS)
    stacks      backend, passphrase, stack names and the config derived from params
    engine      running the Pulumi engine off the caller's event loop, with progress
    operations  preview / up / refresh / destroy / outputs
    result      deploy_or_plan: the Automation API when the CLI is installed, else the plan
    diff        differences from the last run's deploy.json
    errors      the DeployError family and the translation of Pulumi's errors
"""
from workbook.deploy.diff import Comparison, compare_with_last_run, diff_outputs, diff_resources
from workbook.deploy.errors import (
    BackendError,
    DeployError,
    DeployInterrupted,
    LocalEndpointMissing,
    PassphraseMissing,
    PendingOperationsError,
    ProdSafetyError,
    ProgramError,
    PulumiCliMissing,
    StackChoiceError,
    StackLockedError,
    StackNotFound,
    translate_error,
)
from workbook.deploy.operations import (
    Run,
    StackRun,
    check_destroy_allowed,
    destroy,
    expected_destroy_confirmation,
    mask_outputs,
    outputs,
    preview,
    refresh,
    up,
)
from workbook.deploy.plan import Plan, offline_plan
from workbook.deploy.result import Mode, Result, deploy_or_plan, plan_summary
from workbook.deploy.stacks import (
    Backend,
    Operation,
    StackKind,
    StackTarget,
    cli_available,
    require_cli,
    resolve_backend,
    stack_config,
    targets,
)

__all__ = [
    "Backend", "BackendError", "Comparison", "DeployError", "DeployInterrupted", "LocalEndpointMissing", "Mode",
    "Operation", "PassphraseMissing", "PendingOperationsError", "Plan", "ProdSafetyError", "ProgramError",
    "PulumiCliMissing", "Result", "Run", "StackChoiceError", "StackKind", "StackLockedError", "StackNotFound",
    "StackRun", "StackTarget", "check_destroy_allowed", "cli_available", "compare_with_last_run", "deploy_or_plan",
    "destroy", "diff_outputs", "diff_resources", "expected_destroy_confirmation", "mask_outputs", "offline_plan",
    "outputs", "plan_summary", "preview", "refresh", "require_cli", "resolve_backend", "stack_config", "targets",
    "translate_error", "up",
]

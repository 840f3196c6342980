"""Operations on an environment's stacks through the Automation API: preview, up, refresh, destroy, outputs.

Each runs in a worker thread (``engine.off_loop``), streams the CLI's output through ``echo``,
reports progress from the engine's events and returns a ``Run`` whose change summary is a
DataFrame. Secret outputs are masked as ``[secret]``. In prod, ``up`` previews first and applies
only with ``approve=True``; ``destroy`` needs the stacks' fully qualified names.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from infra.config import Settings
from workbook.deploy.engine import Progress, Recorder, off_loop, op_name, print_progress_every
from workbook.deploy.errors import (
    SECRET_MASK,
    DeployError,
    DeployInterrupted,
    ProdSafetyError,
    cli_context,
    scrub,
    translate_error,
)
from workbook.deploy.plan import PULUMI_LOCK
from workbook.deploy.stacks import PROD_ENV, Operation, StackKind, StackTarget, open_stack, settings_of, targets

SUMMARY_COLUMNS = ["stack", "operation", "type", "count"]
CHANGES_COLUMNS = ["stack", "operation", "type", "name"]


def mask_outputs(values: Mapping[str, Any]) -> dict[str, Any]:
    """Stack outputs as plain values, every secret replaced by ``[secret]``."""
    masked: dict[str, Any] = {}
    for name, value in values.items():
        if hasattr(value, "secret") and hasattr(value, "value"):
            masked[name] = SECRET_MASK if value.secret else value.value
        else:
            masked[name] = value
    return masked


@dataclass
class StackRun:
    """One operation on one stack: its change summary, per-resource changes and (masked) outputs."""

    operation: str
    kind: str
    stack: str                  # fully qualified name
    summary: pd.DataFrame     # stack, operation, type, count
    changes: pd.DataFrame     # stack, operation, type, name
    outputs: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""


@dataclass
class Run:
    """An operation over an environment's stacks (foundation first on up, compute first on destroy)."""

    env: str
    operation: str
    stacks: list[StackRun] = field(default_factory=list)
    applied: bool = False

    @property
    def summary(self) -> pd.DataFrame:
        frames = [s.summary for s in self.stacks if not s.summary.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SUMMARY_COLUMNS)

    @property
    def changes(self) -> pd.DataFrame:
        frames = [s.changes for s in self.stacks if not s.changes.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CHANGES_COLUMNS)

    def outputs_of(self, kind: StackKind | str) -> dict[str, Any]:
        for stack_run in self.stacks:
            if stack_run.kind == StackKind(kind).value:
                return stack_run.outputs
        return {}

    @property
    def outputs(self) -> dict[str, Any]:
        """The compute stack's outputs (masked)."""
        return self.outputs_of(StackKind.COMPUTE)

    def counts(self) -> dict[str, int]:
        """Resources per operation over all stacks, e.g. {"create": 40, "same": 2}."""
        summary = self.summary
        if summary.empty:
            return {}
        return {str(k): int(v) for k, v in summary.groupby("operation")["count"].sum().items()}


def _summary_frame(label: str, recorder: Recorder, fallback: Mapping[Any, int] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [{"stack": label, **step} for step in recorder.steps.values()]
    changes = pd.DataFrame(rows, columns=CHANGES_COLUMNS)
    if not changes.empty:
        summary = (changes.groupby(["stack", "operation", "type"]).size().reset_index(name="count")
                   .sort_values(["operation", "type"], ignore_index=True))
    else:
        counts = recorder.changes_summary or {op_name(k): int(v) for k, v in (fallback or {}).items()}
        summary = pd.DataFrame([{"stack": label, "operation": op, "type": "(all types)", "count": n}
                                for op, n in sorted(counts.items())], columns=SUMMARY_COLUMNS)
    return summary[SUMMARY_COLUMNS], changes


# ---------------------------------------------------------------------------------------------
# Operations.
# ---------------------------------------------------------------------------------------------
Echo = Callable[[str], None]
ProgressFn = Callable[[Progress], None]


def default_echo(line: str) -> None:
    print(line, flush=True)


def _run_one(target: StackTarget, operation: Operation, *, echo: Echo | None, progress: ProgressFn | None,
             **options: Any) -> StackRun:
    """Open the stack and run one operation on it, in the caller's thread (see off_loop)."""
    create = operation in (Operation.PREVIEW, Operation.UP)
    opened = open_stack(target, operation.value, create=create, configure=operation is not Operation.OUTPUTS)
    stack, secrets = opened.stack, opened.secrets
    label = target.kind.value
    recorder = Recorder(label, operation.value, progress)
    captured: list[str] = []

    def on_output(line: str) -> None:
        line = scrub(line, secrets)
        captured.append(line)
        if echo:
            echo(line)

    streams = {"on_output": on_output, "on_event": recorder, "color": "never"}
    fallback: Mapping[Any, int] | None = None
    raw_outputs: Mapping[str, Any] = {}
    with PULUMI_LOCK:   # Pulumi's runtime state is process-global: one program at a time
        try:
            if operation is Operation.PREVIEW:
                result = stack.preview(**streams)
                fallback = result.change_summary
            elif operation is Operation.UP:
                result = stack.up(**streams)
                fallback = getattr(result.summary, "resource_changes", None)
                raw_outputs = result.outputs
            elif operation is Operation.REFRESH:
                result = stack.refresh(clear_pending_creates=options.get("clear_pending_creates") or None, **streams)
                fallback = getattr(result.summary, "resource_changes", None)
                raw_outputs = stack.outputs()
            elif operation is Operation.DESTROY:
                result = stack.destroy(**streams)
                fallback = getattr(result.summary, "resource_changes", None)
            else:
                raw_outputs = stack.outputs()
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise translate_error(exc, target, operation.value, secrets, recorder.errors) from None
    if operation is not Operation.OUTPUTS:
        recorder.finish()
    summary, changes = _summary_frame(label, recorder, fallback)
    return StackRun(operation=operation.value, kind=label, stack=target.fully_qualified_name, summary=summary,
                    changes=changes, outputs=mask_outputs(raw_outputs), stdout="\n".join(captured))


def _interrupted(targets_: Sequence[StackTarget], operation: Operation) -> Callable[[bool], DeployError]:
    def build(graceful: bool) -> DeployError:
        target = targets_[0]
        names = ", ".join(t.fully_qualified_name for t in targets_)
        how = ("the Pulumi CLI was asked to stop and finished its in-flight operations"
               if graceful else "the workbook stopped waiting; the Pulumi CLI may still be running")
        return DeployInterrupted(
            f"{operation.value} of {names} was interrupted: {how}. Before the next run, reconcile the state with "
            f"`workbook refresh --env {target.env}` (add --clear-pending-creates if it reports pending creates); "
            f"if the stack stays locked, `pulumi cancel --yes --stack <name>` {cli_context(target)} releases it.")
    return build


def _execute(env: str | Settings, operation: Operation, stack: str | StackKind | None, *,
             echo: Echo | None, progress: ProgressFn | None, order: str = "up", **options: Any) -> Run:
    chosen = targets(env, stack, order=order)
    settings = chosen[0].settings

    def work() -> Run:
        run = Run(env=settings.env, operation=operation.value)
        for target in chosen:
            run.stacks.append(_run_one(target, operation, echo=echo, progress=progress, **options))
        run.applied = operation in (Operation.UP, Operation.REFRESH, Operation.DESTROY)
        return run

    return off_loop(work, _interrupted(chosen, operation))


def _progress_default(progress: ProgressFn | None, echo: Echo | None) -> ProgressFn | None:
    if progress is not None:
        return progress
    return print_progress_every(10) if echo is default_echo else None


def preview(env: str | Settings, *, stack: str | None = None, echo: Echo | None = default_echo,
            progress: ProgressFn | None = None) -> Run:
    """Preview the environment's stacks (foundation first when standalone); nothing is changed.

    Output streams through ``echo`` (default: print) and progress through ``progress``.
    """
    return _execute(env, Operation.PREVIEW, stack, echo=echo, progress=_progress_default(progress, echo))


def up(env: str | Settings, *, stack: str | None = None, approve: bool = False,
       echo: Echo | None = default_echo, progress: ProgressFn | None = None) -> Run:
    """Deploy the environment's stacks, foundation first when standalone.

    In prod the preview always runs first and is shown; without ``approve=True`` nothing is applied
    and ProdSafetyError (carrying the preview as ``.preview``) says how to apply.
    """
    settings = settings_of(env)
    progress = _progress_default(progress, echo)
    if settings.env == PROD_ENV:
        shown = _execute(settings, Operation.PREVIEW, stack, echo=echo, progress=progress)
        if echo:
            echo(f"Preview of {settings.env}: {describe_counts(shown.counts())}.")
        if not approve:
            names = ", ".join(s.stack for s in shown.stacks)
            raise ProdSafetyError(
                f"up in prod needs approval: the preview of {names} is above ({describe_counts(shown.counts())}). "
                "Nothing was applied. Review it, then run again with approve=True (CLI: `workbook deploy --env prod "
                "--approve`).", preview=shown)
    return _execute(settings, Operation.UP, stack, echo=echo, progress=progress)


def refresh(env: str | Settings, *, stack: str | None = None, clear_pending_creates: bool = False,
            echo: Echo | None = default_echo, progress: ProgressFn | None = None) -> Run:
    """Reconcile the stacks' state with what exists in AWS (the recovery step after an interrupted run)."""
    return _execute(env, Operation.REFRESH, stack, echo=echo, progress=_progress_default(progress, echo),
                    clear_pending_creates=clear_pending_creates)


def expected_destroy_confirmation(env: str | Settings, stack: str | None = None) -> str:
    """What ``confirm_destroy`` must equal: the fully qualified name(s) of the stacks to destroy."""
    return ",".join(t.fully_qualified_name for t in targets(env, stack, order="destroy"))


def check_destroy_allowed(env: str | Settings, stack: str | None = None, confirm_destroy: str | None = None) -> None:
    """Raise ProdSafetyError unless a prod destroy is confirmed with the stacks' fully qualified names."""
    chosen = targets(env, stack, order="destroy")
    settings = chosen[0].settings
    if settings.env != PROD_ENV:
        return
    if chosen[0].organization is None:
        raise ProdSafetyError(
            f"destroy in prod needs the stack's fully qualified name, and with Pulumi Cloud "
            f"({chosen[0].backend.url}) that includes your organization: set PULUMI_ORG to it and run again.")
    expected = [t.fully_qualified_name for t in chosen]
    given = [part.strip() for part in (confirm_destroy or "").split(",") if part.strip()]
    if given != expected:
        wanted = ",".join(expected)
        got = f"got {confirm_destroy!r}" if confirm_destroy else "none was given"
        raise ProdSafetyError(
            f"destroy in prod deletes every resource of {wanted} and needs confirm_destroy equal to that name "
            f"({got}). Pass confirm_destroy={wanted!r} (CLI: `workbook destroy --env prod --confirm-destroy {wanted}`).")


def destroy(env: str | Settings, *, stack: str | None = None, confirm_destroy: str | None = None,
            echo: Echo | None = default_echo, progress: ProgressFn | None = None) -> Run:
    """Delete the stacks' resources, compute first. In prod ``confirm_destroy`` must equal the stack name."""
    check_destroy_allowed(env, stack, confirm_destroy)
    return _execute(env, Operation.DESTROY, stack, echo=echo, progress=_progress_default(progress, echo),
                    order="destroy")


def outputs(env: str | Settings, *, stack: str = "compute") -> dict[str, Any]:
    """The deployed stack's outputs, secrets masked as ``[secret]``."""
    run = _execute(env, Operation.OUTPUTS, stack, echo=None, progress=None)
    return run.stacks[0].outputs


def describe_counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no resources"
    return ", ".join(f"{n} to {op}" if op not in ("same", "plan") else (f"{n} unchanged" if op == "same" else f"{n} planned")
                     for op, n in sorted(counts.items()))



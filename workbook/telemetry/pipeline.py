"""dataPipeline's executions from the Step Functions API into pandas, on AWS and locally alike.

``load_executions`` lists the state machine's executions started in a window (ListExecutions,
newest first, so paging stops at the window's start), describes each (status, times, error and
cause) and, for those that did not succeed, reads the history (GetExecutionHistory) to name the
step that failed. ``summarize`` counts them by status and gives the duration percentiles.

The same calls answer on AWS and on the local endpoint (moto's executor). Where moto's answers
differ from AWS's, the loader takes what both give: the execution's name from its ARN (moto's
ListExecutions omits ``name``), and no duration for a timed-out execution without ``stopDate``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbook import aws

EXECUTION_COLUMNS = ["execution", "status", "start", "stop", "duration_s", "failed_step", "error", "cause",
                     "failure_notified"]
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# History events that report a step's failure (AWS's HistoryEventType names).
_FAILURE_EVENTS = {
    "TaskFailed": "taskFailedEventDetails", "TaskTimedOut": "taskTimedOutEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "LambdaFunctionScheduleFailed": "lambdaFunctionScheduleFailedEventDetails",
    "LambdaFunctionStartFailed": "lambdaFunctionStartFailedEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails", "TaskStartFailed": "taskStartFailedEventDetails",
}
MAX_CAUSE_CHARS = 300
# Histories read at most per load: on AWS each is one or more GetExecutionHistory calls.
MAX_HISTORIES = 200


def state_machine_arn(settings: Any, client: Any | None = None) -> str | None:
    """The stack's dataPipeline ARN, found by its name (``<prefix>-data-pipeline``); None when it does not exist."""
    sfn = client or aws.client("stepfunctions", settings.params.aws_region)
    wanted = settings.name("data-pipeline")
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines", []):
            if machine["name"] == wanted:
                return machine["stateMachineArn"]
    return None


def failed_step(events: Iterable[dict[str, Any]], error: str | None = None) -> tuple[str | None, str | None, str | None]:
    """(step, error, cause) of the failure that ended an execution, from its history events in order.

    The step is the state in which the last step failure with the execution's ``error`` happened
    (a Catch may lead through other states first); without one, the state in flight when the
    execution ended (a timeout, an abort).
    """
    current = last_entered = None
    found: tuple[str | None, str | None, str | None] | None = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered:
            current = last_entered = entered.get("name")
        details_key = _FAILURE_EVENTS.get(event.get("type", ""))
        if details_key:
            details = event.get(details_key) or {}
            if error is None or details.get("error") == error:
                found = (current, details.get("error"), details.get("cause"))
    return found or (last_entered, error, None)


def notified_after_failure(events: list[dict[str, Any]]) -> bool:
    """Whether an SNS publish succeeded after the execution's last step failure (its Catch notified)."""
    last_failure = max((i for i, e in enumerate(events) if e.get("type") in _FAILURE_EVENTS), default=None)
    if last_failure is None:
        return False
    return any(e.get("type") == "TaskSucceeded" and (e.get("taskSucceededEventDetails") or {}).get("resourceType") == "sns"
               for e in events[last_failure + 1:])


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page.get("events", []))
    return events


def _cause_text(cause: str | None) -> str | None:
    """A Lambda error's cause is its JSON payload: keep its message; cut anything long."""
    if not cause:
        return None
    try:
        payload = json.loads(cause)
        if isinstance(payload, dict) and payload.get("errorMessage"):
            cause = str(payload["errorMessage"])
    except ValueError:
        pass
    return cause if len(cause) <= MAX_CAUSE_CHARS else cause[:MAX_CAUSE_CHARS - 3] + "..."


def load_executions(machine_arn: str, start: pd.Timestamp, end: pd.Timestamp, *, region: str | None = None,
                    client: Any | None = None) -> pd.DataFrame:
    """One row per execution started in [start, end): EXECUTION_COLUMNS, newest first.

    ``attrs['histories']`` counts the histories read and ``attrs['histories_skipped']`` those left
    out beyond MAX_HISTORIES (their failed step is then unknown).
    """
    sfn = client or aws.client("stepfunctions", region)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    rows, histories, skipped = [], 0, 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn):
        listed = page.get("executions", [])
        for item in listed:
            started = pd.Timestamp(item["startDate"]).tz_convert("UTC")
            if not start <= started < end:
                continue
            described = sfn.describe_execution(executionArn=item["executionArn"])
            status = described["status"]
            stop = pd.Timestamp(described["stopDate"]).tz_convert("UTC") if described.get("stopDate") else pd.NaT
            step = error = cause = notified = None
            if status in ("FAILED", "TIMED_OUT", "ABORTED"):
                error, cause = described.get("error"), described.get("cause")
                if histories < MAX_HISTORIES:
                    histories += 1
                    events = _history(sfn, item["executionArn"])
                    step, step_error, step_cause = failed_step(events, error)
                    error, cause = error or step_error, cause or step_cause
                    notified = notified_after_failure(events)
                else:
                    skipped += 1
                if status == "TIMED_OUT":
                    error = error or "States.Timeout"
            rows.append({"execution": item.get("name") or item["executionArn"].rsplit(":", 1)[-1],
                         "status": status, "start": started, "stop": stop,
                         "duration_s": (stop - started).total_seconds() if stop is not pd.NaT else np.nan,
                         "failed_step": step, "error": error, "cause": _cause_text(cause),
                         "failure_notified": notified})
        if listed and pd.Timestamp(listed[-1]["startDate"]).tz_convert("UTC") < start:
            break   # newest first: the rest started before the window
    frame = pd.DataFrame(rows, columns=EXECUTION_COLUMNS)
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["stop"] = pd.to_datetime(frame["stop"], utc=True)
    frame["duration_s"] = frame["duration_s"].astype(float)
    frame = frame.sort_values("start", ascending=False, ignore_index=True)
    frame.attrs.update(histories=histories, histories_skipped=skipped)
    return frame


@dataclass(frozen=True)
class PipelineSummary:
    """Executions by status in the window, and the duration of those that ended (seconds)."""

    started: int
    running: int
    succeeded: int
    failed: int
    timed_out: int
    aborted: int
    p50_duration_s: float
    p99_duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return {key: (None if isinstance(value, float) and np.isnan(value) else value)
                for key, value in asdict(self).items()}


def summarize(executions: pd.DataFrame) -> PipelineSummary:
    """Counts by status, and p50/p99 of the ended executions' durations (NaN when none ended)."""
    counts = executions["status"].value_counts() if len(executions) else pd.Series(dtype=int)
    durations = executions["duration_s"].dropna() if len(executions) else pd.Series(dtype=float)

    def count(status: str) -> int:
        return int(counts.get(status, 0))

    return PipelineSummary(
        started=len(executions), running=count("RUNNING"), succeeded=count("SUCCEEDED"), failed=count("FAILED"),
        timed_out=count("TIMED_OUT"), aborted=count("ABORTED"),
        p50_duration_s=float(durations.quantile(0.50)) if len(durations) else float("nan"),
        p99_duration_s=float(durations.quantile(0.99)) if len(durations) else float("nan"),
    )


def failures(executions: pd.DataFrame) -> pd.DataFrame:
    """The executions that did not succeed, by failed step and error: how many, how many of them had
    their failure notification published (an SNS publish succeeded after the failure), the latest cause."""
    ended = executions[executions["status"].isin(["FAILED", "TIMED_OUT", "ABORTED"])]
    if ended.empty:
        return pd.DataFrame(columns=["failed_step", "error", "executions", "notified", "latest_cause"])
    ended = ended.assign(notified=ended["failure_notified"].eq(True).astype(int))
    grouped = ended.fillna({"failed_step": "(unknown)", "error": "(none)"}).groupby(["failed_step", "error"])
    table = grouped.agg(executions=("execution", "size"), notified=("notified", "sum"),
                        latest_cause=("cause", "first")).reset_index()
    return table.sort_values("executions", ascending=False, ignore_index=True)

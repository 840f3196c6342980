"""AWS Compute Optimizer's memory advice for the stack's functions, beside the workbook's own.

``load_advice`` calls ``GetLambdaFunctionRecommendations`` (paginated, for the account's functions,
kept to the stack's) and returns one row per function: finding, reason codes, current memory, its
first-ranked option's memory, projected duration (expected) and monthly savings, the lookback and the
invocations it saw. ``beside_ours`` puts it next to ``workbook.tuning.recommend``'s memory rows and says
where and why they differ: Compute Optimizer advises memory only, only up to 1,792 MB, only after 50
invocations in its 14-day lookback, from CloudWatch metrics (no payload classes, no worst-case
input, no timeout or architecture). When the account has not opted in, or the call is denied, or
the run is local, the frame is empty and ``attrs["note"]`` says so in one line.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from infra.config import Settings
from workbook import aws

__all__ = ["ADVICE_COLUMNS", "CO_MAX_MEMORY_MB", "CO_MIN_INVOCATIONS", "beside_ours", "load_advice"]

#: Compute Optimizer recommends Lambda memory only up to this size ...
CO_MAX_MEMORY_MB = 1_792
#: ... and only for functions invoked at least this often in its lookback (14 days).
CO_MIN_INVOCATIONS = 50
CO_LOOKBACK_DAYS = 14
ADVICE_COLUMNS = ["function", "finding", "reasons", "current_memory_mb", "co_memory_mb", "co_expected_duration_ms",
                  "co_monthly_savings_usd", "co_savings_pct", "lookback_days", "invocations", "performance_risk"]


def _empty(note: str) -> pd.DataFrame:
    frame = pd.DataFrame(columns=ADVICE_COLUMNS)
    frame.attrs["note"] = note
    return frame


def load_advice(settings: Settings, keys: Sequence[str], *, client: Any = None) -> pd.DataFrame:
    """Compute Optimizer's advice per function key (see the module's docstring); empty with a note when unavailable."""
    if client is None and aws.is_local():
        return _empty("Compute Optimizer: an AWS service, not on the local endpoint; only the workbook's advice here.")
    client = client or aws.client("compute-optimizer", settings.params.aws_region)
    wanted = {settings.function_name(key): key for key in keys}
    found: list[dict] = []
    kwargs: dict[str, Any] = {}
    try:
        while True:
            page = client.get_lambda_function_recommendations(**kwargs)
            found += page.get("lambdaFunctionRecommendations", [])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "OptInRequiredException":
            return _empty("Compute Optimizer: this account has not opted in (compute-optimizer "
                          "update-enrollment-status --status Active); only the workbook's advice here.")
        if code in ("AccessDeniedException", "AccessDenied"):
            return _empty("Compute Optimizer: the call was denied (grant compute-optimizer:"
                          "GetLambdaFunctionRecommendations); only the workbook's advice here.")
        return _empty(f"Compute Optimizer: unavailable ({code}); only the workbook's advice here.")
    except BotoCoreError as exc:
        return _empty(f"Compute Optimizer: unavailable ({exc}); only the workbook's advice here.")
    rows = [_row(wanted[name], item) for item in found
            if (name := item.get("functionArn", "").split(":function:")[-1].split(":")[0]) in wanted]
    frame = pd.DataFrame(rows, columns=ADVICE_COLUMNS)
    missing = sorted(set(wanted.values()) - set(frame["function"]))
    if missing:
        frame.attrs["note"] = (f"Compute Optimizer has no recommendation for {', '.join(missing)} yet (it needs "
                               f"{CO_MIN_INVOCATIONS} invocations in {CO_LOOKBACK_DAYS} days, and refreshes daily).")
    return frame


def _row(key: str, item: Mapping[str, Any]) -> dict[str, Any]:
    options = sorted(item.get("memorySizeRecommendationOptions", []), key=lambda o: o.get("rank", 99))
    first = options[0] if options else {}
    expected = next((m.get("value") for m in first.get("projectedUtilizationMetrics", [])
                     if m.get("name") == "Duration" and m.get("statistic") == "Expected"), None)
    savings = first.get("savingsOpportunity", {})
    return {
        "function": key, "finding": item.get("finding"), "reasons": ", ".join(item.get("findingReasonCodes", [])),
        "current_memory_mb": item.get("currentMemorySize"), "co_memory_mb": first.get("memorySize"),
        "co_expected_duration_ms": expected,
        "co_monthly_savings_usd": savings.get("estimatedMonthlySavings", {}).get("value"),
        "co_savings_pct": savings.get("savingsOpportunityPercentage"),
        "lookback_days": item.get("lookbackPeriodInDays"), "invocations": item.get("numberOfInvocations"),
        "performance_risk": item.get("currentPerformanceRisk"),
    }


def beside_ours(advice: pd.DataFrame, recommendations: pd.DataFrame, settings: Settings,
                keys: Sequence[str]) -> pd.DataFrame:
    """Per function: our memory advice, Compute Optimizer's, and why they differ (one sentence)."""
    ours = recommendations[recommendations["kind"] == "memory"].set_index("function") if len(recommendations) else None
    theirs = advice.set_index("function") if len(advice) else None
    rows = []
    for key in keys:
        current = settings.function(key)
        mine = ours.loc[key] if ours is not None and key in ours.index else None
        co = theirs.loc[key] if theirs is not None and key in theirs.index else None
        rows.append({"function": key, "current_memory_mb": current.memory_mb,
                     "our_memory_mb": None if mine is None else mine["recommended"],
                     "our_status": None if mine is None else str(mine["status"]),
                     "co_memory_mb": None if co is None else co["co_memory_mb"],
                     "co_finding": None if co is None else co["finding"],
                     "why": _why(current.memory_mb, current.architecture, mine, co)})
    return pd.DataFrame(rows)


def _why(current_mb: int, architecture: str, mine: Any, co: Any) -> str:
    if co is None:
        return (f"no Compute Optimizer advice: it needs {CO_MIN_INVOCATIONS} invocations in {CO_LOOKBACK_DAYS} days "
                "(or the account has not opted in)")
    if co["finding"] == "Unavailable" or "InsufficientData" in str(co["reasons"]):
        return f"Compute Optimizer has too little data ({co['reasons'] or co['finding']})"
    if current_mb > CO_MAX_MEMORY_MB:
        return f"{current_mb} MB is above Compute Optimizer's {CO_MAX_MEMORY_MB:,} MB limit: only ours applies"
    ours = None if mine is None else _number(mine["recommended"])
    if ours is not None and co["co_memory_mb"] is not None and int(ours) == int(co["co_memory_mb"]):
        return "the same size"
    if ours is not None and ours > CO_MAX_MEMORY_MB:
        return f"ours is above {CO_MAX_MEMORY_MB:,} MB, where Compute Optimizer does not go"
    return ("they differ: Compute Optimizer reads 14 days of CloudWatch metrics (memory only, no payload classes, "
            f"no worst-case input, {architecture} as deployed); ours reads the window's REPORT lines and power tuning, "
            "with a floor from Max Memory Used")


def _number(value: Any) -> float | None:
    try:
        return float(str(value).split()[0])
    except (TypeError, ValueError, IndexError):
        return None

"""Tables for a reader: human headers with units, fractions as percentages, and wide tables split by concern.

The library and ``summary.json`` keep machine names (``init_p50_ms``); what a person reads in a
notebook or the runbook says ``INIT p50 (ms)``. ``HEADERS`` names the columns the notebooks show;
``header`` derives the rest from the name's unit suffix, so a new column reads well before anyone
adds it here. ``CONCERNS`` splits the wide tables (cold starts, cost, health) into tables that fit
a 1,400 px page, each about one question; ``split`` drops a part with nothing in it (no SnapStart
restores, say) and ``constant_columns`` lifts a column that is the same on every row (the window's
length) into a sentence.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

__all__ = ["CONCERNS", "HEADERS", "PERCENT_OF_ONE", "SAY_ONCE", "Part", "constant_columns", "header", "humanize", "split"]

# Explicit headers: where the rule below would read badly, or a unit needs saying.
HEADERS: dict[str, str] = {
    "function": "Function",
    "memory_size_mb": "Memory (MB)",
    "hour": "Hour (UTC)",
    "invocations": "Invocations",
    "errors": "Errors",
    "error_rate_pct": "Error rate (%)",
    "throttles": "Throttles",
    "max_concurrency": "Max concurrency",
    "avg_ms": "Average (ms)",
    "timeout_s": "Timeout (s)",
    "p99_pct_of_timeout": "p99 (% of timeout)",
    "percentile_source": "Percentiles from",
    "cold_starts": "Cold starts",
    "cold_start_rate": "Cold-start rate (%)",
    "init_latency_share": "INIT share of latency (%)",
    "init_cost_share": "INIT share of cost (%)",
    "init_billed": "INIT billed",
    "restores": "SnapStart restores",
    "restore_latency_share": "Restore share of latency (%)",
    "gb_seconds": "Compute (GB-s)",
    "init_gb_seconds": "INIT (GB-s)",
    "requests_usd": "Requests (USD)",
    "compute_usd": "Compute (USD)",
    "init_usd": "INIT (USD)",
    "ephemeral_usd": "Ephemeral storage (USD)",
    "provisioned_usd": "Provisioned concurrency (USD)",
    "snapstart_usd": "SnapStart (USD)",
    "total_usd": "Total in the window (USD)",
    "period_hours": "Window (h)",
    "monthly_projection_usd": "Projected per month (USD)",
    "monthly_saving_usd": "Saving per month (USD)",
    "provisioned_concurrency": "Provisioned concurrency",
    "on_demand_cold_start_rate": "On-demand cold-start rate (%)",
    "first_window_samples": "First half (invocations)",
    "second_window_samples": "Second half (invocations)",
    "second_window_max_ms": "Second half's longest (ms)",
    "current_s": "Current (s)",
    "recommended_s": "From the first half (s)",
    "cut": "Cut",
    "bound_only_s": "Bound alone (s)",
    "bound_only_cut": "Cut by the bound alone",
    "ApproximateAgeOfOldestMessage": "Oldest message (s)",
    "ApproximateNumberOfMessagesVisible": "Messages visible",
}

# Fractions of one that a reader takes in as percentages (their headers say "%").
PERCENT_OF_ONE = frozenset({"cold_start_rate", "init_latency_share", "init_cost_share", "restore_latency_share",
                            "on_demand_cold_start_rate"})

# Unit suffixes of machine names, and how a header says them.
_UNITS = {"ms": "ms", "s": "s", "mb": "MB", "gb": "GB", "usd": "USD", "pct": "%", "kb": "KB", "bytes": "bytes",
          "hours": "h", "h": "h"}
# Words a header capitalises as the reader knows them.
_WORDS = {"init": "INIT", "api": "API", "dlq": "DLQ", "sqs": "SQS", "sns": "SNS", "gb": "GB", "mb": "MB",
          "usd": "USD", "id": "ID", "url": "URL", "cpu": "CPU", "pct": "%"}


def header(name: str) -> str:
    """The human header of a column: ``HEADERS``, else words from the name with its unit in brackets.

    ``init_p50_ms`` -> ``INIT p50 (ms)``; ``queue_age_s`` -> ``Queue age (s)``; a name that is not a
    machine name (already a header, or not a string) is returned as it is.
    """
    if name in HEADERS:
        return HEADERS[name]
    if not isinstance(name, str) or not name or name != name.lower() or " " in name:
        return str(name)
    words = name.split("_")
    unit = _UNITS.get(words[-1]) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    shown = [_WORDS.get(w, w) for w in words]
    first = shown[0]
    if first == words[0] and not (first[:1] == "p" and first[1:].replace(".", "").isdigit()):
        shown[0] = first[:1].upper() + first[1:]        # "p50" stays a percentile, not "P50"
    return " ".join(shown) + (f" ({unit})" if unit else "")


def humanize(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for reading: human headers, and fractions of one as percentages. The frame itself is left alone."""
    shown = frame.copy()
    for column in PERCENT_OF_ONE & set(shown.columns):
        shown[column] = pd.to_numeric(shown[column], errors="coerce") * 100.0
    renamed = {c: header(c) for c in shown.columns}
    if len(set(renamed.values())) < len(renamed):      # two names, one header: keep the machine names apart
        renamed = {c: h if list(renamed.values()).count(h) == 1 else f"{h} [{c}]" for c, h in renamed.items()}
    return shown.rename(columns=renamed)


@dataclass(frozen=True)
class Part:
    """One table of a split: its title and its columns (the key columns first)."""

    title: str
    frame: pd.DataFrame


# The wide tables, by concern: title -> columns (after the key columns, which every part repeats).
CONCERNS: dict[str, dict[str, list[str]]] = {
    "cold_starts": {
        "Cold starts and INIT duration": ["invocations", "cold_starts", "cold_start_rate", "init_p50_ms", "init_p95_ms",
                                          "init_p99_ms", "init_latency_share", "init_cost_share", "init_billed"],
        "SnapStart restores": ["restores", "restore_p50_ms", "restore_p95_ms", "restore_p99_ms",
                               "restore_latency_share"],
    },
    "cost": {
        "Usage": ["invocations", "cold_starts", "restores", "gb_seconds", "init_gb_seconds", "period_hours"],
        "Charges": ["requests_usd", "compute_usd", "init_usd", "ephemeral_usd", "provisioned_usd", "snapstart_usd",
                    "total_usd", "monthly_projection_usd"],
    },
    "health": {
        "Traffic": ["invocations", "errors", "error_rate_pct", "throttles", "max_concurrency"],
        "Latency": ["avg_ms", "p50_ms", "p90_ms", "p99_ms", "timeout_s", "p99_pct_of_timeout", "percentile_source"],
    },
}
# Columns that are usually the same on every row: said once in a sentence when they are.
SAY_ONCE: dict[str, list[str]] = {"cold_starts": ["init_billed"], "cost": ["period_hours"],
                                  "health": ["percentile_source"]}
# Columns that are often zero everywhere (a charge the stack does not use): left out of a part when they are.
OPTIONAL = frozenset({"restores", "ephemeral_usd", "provisioned_usd", "snapstart_usd", "init_gb_seconds", "init_usd"})


def split(frame: pd.DataFrame, concerns: Mapping[str, Sequence[str]], keys: Sequence[str]) -> list[Part]:
    """``frame`` as one table per concern, each with the ``keys`` columns first.

    A part whose columns are all zero or empty is left out, and so is an ``OPTIONAL`` column that is
    zero on every row; columns of ``frame`` in no concern are not shown (they stay in the frame).
    """
    keys = [k for k in keys if k in frame.columns]
    parts = []
    for title, columns in concerns.items():
        present = [c for c in columns if c in frame.columns]
        shown = [c for c in present if not (c in OPTIONAL and _empty(frame[c]))]
        if not shown or all(_empty(frame[c]) for c in shown):
            continue
        parts.append(Part(title, frame[keys + shown]))
    return parts


def constant_columns(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, object]:
    """Of ``columns``, those with one value on every row (worth a sentence, not a column), with that value."""
    found = {}
    for column in columns:
        if column in frame.columns and len(frame) and frame[column].nunique(dropna=False) == 1:
            found[column] = frame[column].iloc[0]
    return found


def _empty(values: pd.Series) -> bool:
    numeric = pd.to_numeric(values, errors="coerce")
    if values.dtype == bool or (numeric.isna().all() and values.notna().any()):
        return False           # text or flags: something to show
    return bool(numeric.fillna(0).eq(0).all())

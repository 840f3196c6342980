"""Cold starts from REPORT rows (``workbook.logs.parse_reports``): rate, INIT percentiles, INIT's
share of latency and of cost, per function and by memory size, architecture and hour, and the
effect of provisioned concurrency where it is configured.

A cold start is a REPORT with ``Init Duration``, or a SnapStart restore (``Restore Duration``: the
environment resumed from a snapshot; its start-up latency is Restore Duration + Duration, as AWS
counts it). ``start_type`` tells them apart, and restores have their own count and percentiles.
Environments of provisioned concurrency are initialised ahead of traffic and report no ``Init
Duration``, so a cold start on a function with provisioned concurrency is a spill-over to
on-demand environments.

INIT is billed like duration for on-demand functions packaged as zip from 1 August 2025
(container images and custom runtimes were billed before): ``init_cost_share`` counts it only
when billed, and never twice when the REPORT's Billed Duration already includes it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd

from workbook.analysis.cost import init_is_billed, restored

__all__ = ["summary", "timeline", "provisioned_concurrency_effect", "GROUPINGS"]

GROUPINGS = ("function", "memory_size_mb", "architecture", "hour")


def _prepare(reports: pd.DataFrame, architecture: str | Mapping[str, str] | None) -> pd.DataFrame:
    frame = reports.copy()
    if "architecture" not in frame:
        if isinstance(architecture, Mapping):
            frame["architecture"] = frame["function"].map(lambda f: architecture.get(f, "unknown"))
        else:
            frame["architecture"] = architecture or "unknown"
    frame["hour"] = frame["timestamp"].dt.hour if "timestamp" in frame else np.nan
    init = frame["init_duration_ms"].astype(float).fillna(0.0)
    restore = (frame["restore_duration_ms"].astype(float).fillna(0.0) if "restore_duration_ms" in frame
               else pd.Series(0.0, index=frame.index))
    frame["_init_ms"] = init
    frame["_restore_ms"] = restore.where(restored(frame), 0.0)
    frame["_latency_ms"] = frame["duration_ms"].astype(float) + init + frame["_restore_ms"]
    return frame


def summary(
    reports: pd.DataFrame,
    by: str | Sequence[str] = "function",
    *,
    architecture: str | Mapping[str, str] | None = None,
    package_type: str = "Zip",
    on: date | None = None,
) -> pd.DataFrame:
    """Cold-start figures per group of ``by`` (any of function, memory_size_mb, architecture, hour).

    Columns: the ``by`` columns, invocations, cold_starts (INIT and SnapStart restores),
    cold_start_rate, init_p50_ms, init_p95_ms, init_p99_ms, init_latency_share (INIT ms / (duration
    + INIT + restore) ms over all invocations), init_cost_share (billed INIT GB-s / all billed GB-s),
    init_billed, restores, restore_p50_ms, restore_p95_ms, restore_p99_ms, restore_latency_share.
    Rows without billed duration or memory (Managed Instances) count everywhere but in the cost share.
    """
    by = [by] if isinstance(by, str) else list(by)
    unknown = set(by) - set(GROUPINGS)
    if unknown:
        raise ValueError(f"cannot group cold starts by {sorted(unknown)}; use any of {', '.join(GROUPINGS)}")
    columns = by + ["invocations", "cold_starts", "cold_start_rate", "init_p50_ms", "init_p95_ms", "init_p99_ms",
                    "init_latency_share", "init_cost_share", "init_billed", "restores", "restore_p50_ms",
                    "restore_p95_ms", "restore_p99_ms", "restore_latency_share"]
    if reports is None or len(reports) == 0:
        return pd.DataFrame(columns=columns)

    frame = _prepare(reports, architecture)
    last = frame["timestamp"].max() if "timestamp" in frame else pd.NaT
    billed_init = init_is_billed(package_type, on or (last.date() if pd.notna(last) else None))
    memory_gb = frame["memory_size_mb"].astype(float).fillna(0.0) / 1024.0
    billed_ms = frame["billed_duration_ms"].astype(float)   # NaN for Managed Instances: no INIT billed there
    already = (billed_ms >= np.ceil(frame["duration_ms"].astype(float) + frame["_init_ms"])) | billed_ms.isna()
    billed_init_s = np.where((frame["_init_ms"] > 0) & ~already & billed_init, np.ceil(frame["_init_ms"]) / 1000.0, 0.0)
    frame["_init_gb_s"] = billed_init_s * memory_gb
    frame["_gb_s"] = billed_ms.fillna(0.0) / 1000.0 * memory_gb
    frame["_restored"] = restored(frame)
    rows = []
    for keys, group in frame.groupby(by, dropna=False, observed=True, sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        rows.append({**dict(zip(by, keys, strict=True)), **_group_figures(group), "init_billed": bool(billed_init)})
    return pd.DataFrame(rows, columns=columns)


def _group_figures(group: pd.DataFrame) -> dict:
    """Cold-start figures of one group of prepared rows."""
    cold = group["cold_start"].astype(bool) & ~group["_restored"]
    init = group.loc[cold, "init_duration_ms"].astype(float).dropna()
    restore = group.loc[group["_restored"], "_restore_ms"]
    latency = group["_latency_ms"].sum()
    total_gb_s = group["_gb_s"].sum() + group["_init_gb_s"].sum()

    def pct(values: pd.Series, q: float) -> float:
        return float(values.quantile(q)) if len(values) else np.nan

    return {
        "invocations": len(group),
        "cold_starts": int(group["cold_start"].astype(bool).sum()),
        "cold_start_rate": float(group["cold_start"].astype(bool).mean()),
        "init_p50_ms": pct(init, 0.50), "init_p95_ms": pct(init, 0.95), "init_p99_ms": pct(init, 0.99),
        "init_latency_share": group["_init_ms"].sum() / latency if latency else 0.0,
        "init_cost_share": group["_init_gb_s"].sum() / total_gb_s if total_gb_s else 0.0,
        "restores": int(len(restore)),
        "restore_p50_ms": pct(restore, 0.50), "restore_p95_ms": pct(restore, 0.95), "restore_p99_ms": pct(restore, 0.99),
        "restore_latency_share": group["_restore_ms"].sum() / latency if latency else 0.0,
    }


def timeline(reports: pd.DataFrame, freq: str = "5min") -> pd.DataFrame:
    """Invocations and cold starts per function per ``freq`` bucket (for the timeline chart)."""
    columns = ["function", "timestamp", "invocations", "cold_starts", "init_p95_ms"]
    if reports is None or len(reports) == 0:
        return pd.DataFrame(columns=columns)
    frame = reports.dropna(subset=["timestamp"]).copy()
    frame["timestamp"] = frame["timestamp"].dt.floor(freq)
    grouped = frame.groupby(["function", "timestamp"], observed=True)
    out = grouped.agg(invocations=("request_id", "size"), cold_starts=("cold_start", "sum"),
                      init_p95_ms=("init_duration_ms", lambda s: s.quantile(0.95) if s.notna().any() else np.nan))
    return out.reset_index()[columns]


def provisioned_concurrency_effect(reports: pd.DataFrame, provisioned: Mapping[str, int]) -> pd.DataFrame:
    """For functions with provisioned concurrency: what the remaining (spill-over) cold starts cost in latency.

    Columns: function, provisioned_concurrency, invocations, cold_starts, cold_start_rate,
    p99_latency_ms (duration + INIT, all invocations), p99_warm_latency_ms (warm only),
    cold_start_penalty_ms (the difference), and, where functions without provisioned
    concurrency are in the data, their cold_start_rate as ``on_demand_cold_start_rate``
    for comparison.
    """
    columns = ["function", "provisioned_concurrency", "invocations", "cold_starts", "cold_start_rate",
               "p99_latency_ms", "p99_warm_latency_ms", "cold_start_penalty_ms", "on_demand_cold_start_rate"]
    if reports is None or len(reports) == 0 or not provisioned:
        return pd.DataFrame(columns=columns)
    frame = _prepare(reports, None)
    on_demand = frame[~frame["function"].isin(list(provisioned))]
    baseline = float(on_demand["cold_start"].mean()) if len(on_demand) else np.nan
    rows = []
    for function, units in provisioned.items():
        group = frame[frame["function"] == function]
        if group.empty:
            continue
        warm = group[~group["cold_start"].astype(bool)]
        p99 = float(group["_latency_ms"].quantile(0.99))
        p99_warm = float(warm["_latency_ms"].quantile(0.99)) if len(warm) else np.nan
        rows.append({
            "function": function, "provisioned_concurrency": int(units), "invocations": len(group),
            "cold_starts": int(group["cold_start"].sum()), "cold_start_rate": float(group["cold_start"].mean()),
            "p99_latency_ms": p99, "p99_warm_latency_ms": p99_warm, "cold_start_penalty_ms": p99 - p99_warm,
            "on_demand_cold_start_rate": baseline,
        })
    return pd.DataFrame(rows, columns=columns)

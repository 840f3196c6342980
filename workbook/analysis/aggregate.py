"""The raw route's summary frames from the aggregate route's ``Aggregates`` (``workbook.telemetry.aggregate``).

Each function here answers as its raw-route twin does on the same invocations:

* ``coldstart_summary``  as ``workbook.analysis.coldstart.summary`` (by any of function, memory size, architecture,
  hour); ``coldstart_timeline`` as ``coldstart.timeline`` at 5 minutes;
* ``cost_from_aggregates`` as ``workbook.analysis.cost.cost_from_reports`` (through the same ``function_charges``);
* ``duration_percentiles`` the Duration p50/p90/p99 rows ``workbook.analysis.health.per_function`` reads;
* ``memory_floor_inputs``  the peak, count and out-of-memory sizes ``workbook.tuning.floors.memory_floor`` takes.

Counts, sums, maxima and costs are exact. A percentile is exact where one group holds all the rows
asked about (per function: one version in the window, whatever its memory changes); across groups
(several traffic versions, a memory size's or an hour's 5-minute bins) it is ``merge_percentiles``'
estimate, which lies between the groups' own percentiles; ``attrs["percentiles"]`` says which (and
``attrs["restore_percentiles"]`` for SnapStart's Restore Duration, counted, timed and priced as on the raw route).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd

from workbook.analysis.coldstart import GROUPINGS
from workbook.analysis.cost import COST_COLUMNS, FREE_EPHEMERAL_MB, function_charges, init_is_billed, region_prices
from workbook.telemetry import insights_queries as iq
from workbook.telemetry.aggregate import Aggregates, merge_percentiles, window_hours

__all__ = ["coldstart_summary", "coldstart_timeline", "percentile_sentence", "cost_from_aggregates", "duration_percentiles",
           "memory_floor_inputs"]

_INIT = {p / 100.0: iq.pct_field("init", p) + "_ms" for p in iq.INIT_PERCENTILES}
_DURATION = {p / 100.0: iq.pct_field("duration", p) + "_ms" for p in iq.DURATION_PERCENTILES}
_RESTORE = {p / 100.0: iq.pct_field("restore", p) + "_ms" for p in iq.RESTORE_PERCENTILES}
EXACT = "exact (one group: Logs Insights' own percentile)"
MERGED = ("merged across groups: an estimate between the groups' own percentiles (in rank within half a point "
          "in the differential test)")


def _merged(rows: pd.DataFrame, columns: Mapping[float, str], count: str, q: float, low: str, top: str | None = None,
            ) -> float:
    """The ``q`` percentile over ``rows`` from their per-group minimum, percentiles and maximum (see ``merge_percentiles``)."""
    if not len(rows):
        return float("nan")
    knots = [{0.0: float(r[low])} | {level: float(r[c]) for level, c in columns.items()}
             | ({1.0: float(r[top])} if top else {}) for _, r in rows.iterrows()]
    return merge_percentiles(rows[count].astype(float).tolist(), knots, q)


def percentile_sentence(frame: pd.DataFrame, what: str = "INIT percentiles") -> str:
    """One sentence on which of an aggregate frame's percentiles are exact and which merged ('' on the raw route)."""
    how = frame.attrs.get("percentiles")
    if frame.attrs.get("route") != "aggregate" or how is None:
        return ""
    merged = [", ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k, v in how.items() if v == MERGED]
    if not merged:
        return f"Aggregate route: counts, rates and shares are exact, and the {what} are Logs Insights' own."
    shown = "; ".join(merged[:6]) + (f" and {len(merged) - 6} more" if len(merged) > 6 else "")
    return (f"Aggregate route: counts, rates and shares are exact; the {what} of {shown} are merged across 5-minute "
            "bins or versions, an estimate that lies between the groups' own percentiles (the others are Logs "
            "Insights' own).")


def _how(rows: pd.DataFrame) -> str:
    return EXACT if len(rows) <= 1 else MERGED


def _gb_s(rows: pd.DataFrame, column: str) -> float:
    return float((rows[column].astype(float) / 1000.0 * rows["memory_size_mb"].astype(float) / 1024.0).sum())


def _last_day(agg: Aggregates) -> date | None:
    if len(agg.bins):
        return pd.Timestamp(agg.bins["bin_start"].max()).date()
    return agg.end.date() if pd.notna(agg.end) else None


def coldstart_summary(agg: Aggregates, by: str | Sequence[str] = "function", *,
                      architecture: str | Mapping[str, str] | None = None, package_type: str = "Zip",
                      on: date | None = None) -> pd.DataFrame:
    """``coldstart.summary``'s frame from aggregates, by any of function, memory_size_mb, architecture, hour.

    By function alone the rows are the window's (its INIT percentiles Insights' own where one version ran);
    otherwise the 5-minute bins' (a bin lies in one hour, at one memory size, of one function, so the counts
    and shares are exact; the INIT percentiles merged across bins where a group holds several).
    ``architecture``: one for all, or function -> architecture, as ``coldstart.summary`` takes it.
    """
    keys = [by] if isinstance(by, str) else list(by)
    unknown = set(keys) - set(GROUPINGS)
    if unknown or not keys:
        raise ValueError(f"cannot group cold starts by {sorted(unknown) or keys}; use any of {', '.join(GROUPINGS)}")
    columns = keys + ["invocations", "cold_starts", "cold_start_rate", "init_p50_ms", "init_p95_ms", "init_p99_ms",
                      "init_latency_share", "init_cost_share", "init_billed", "restores", "restore_p50_ms",
                      "restore_p95_ms", "restore_p99_ms", "restore_latency_share"]
    whole = keys == ["function"]
    source = agg.window if whole else agg.bins
    if not len(source):
        return pd.DataFrame(columns=columns)
    frame = source.copy()
    if "hour" in keys:
        frame["hour"] = pd.to_datetime(frame["bin_start"], utc=True).dt.hour
    if "architecture" in keys:
        frame["architecture"] = (frame["function"].map(lambda f: architecture.get(str(f), "unknown"))
                                 if isinstance(architecture, Mapping) else (architecture or "unknown"))
    billed_init = init_is_billed(package_type, on or _last_day(agg))
    rows, how, restore_how = [], {}, {}
    for key, group in frame.groupby(keys, sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        invocations = float(group["invocations"].sum())
        cold = float(group["cold_starts"].sum())
        latency = float(group["duration_sum_ms"].sum() + group["init_sum_ms"].sum() + group["restore_sum_ms"].sum())
        billed = agg.bins[agg.bins["function"] == key[0]] if whole else group   # GB-s need the memory size
        gb_s = _gb_s(billed, "billed_duration_sum_ms")
        init_gb_s = _gb_s(billed, "init_unbilled_ms") if billed_init else 0.0
        with_cold, with_restore = group[group["inits"] > 0], group[group["restores"] > 0]
        label = key[0] if len(keys) == 1 else key
        how[label], restore_how[label] = _how(with_cold), _how(with_restore)
        rows.append({
            **dict(zip(keys, key, strict=True)), "invocations": int(invocations), "cold_starts": int(cold),
            "cold_start_rate": cold / invocations if invocations else float("nan"),
            **{f"init_p{int(q * 100)}_ms": _merged(with_cold, _INIT, "inits", q, "init_min_ms") for q in _INIT},
            "init_latency_share": float(group["init_sum_ms"].sum()) / latency if latency else 0.0,
            "init_cost_share": init_gb_s / (gb_s + init_gb_s) if gb_s + init_gb_s else 0.0,
            "init_billed": bool(billed_init), "restores": int(group["restores"].sum()),
            **{f"restore_p{int(q * 100)}_ms": _merged(with_restore, _RESTORE, "restores", q, "restore_min_ms")
               for q in _RESTORE},
            "restore_latency_share": float(group["restore_sum_ms"].sum()) / latency if latency else 0.0,
        })
    out = pd.DataFrame(rows, columns=columns)
    out.attrs.update(route="aggregate", percentiles=how, restore_percentiles=restore_how)
    return out


def coldstart_timeline(agg: Aggregates) -> pd.DataFrame:
    """``coldstart.timeline``'s frame at the bins' 5 minutes: invocations and cold starts per function and bin
    (exact), and the bin's INIT p95 (merged across its versions and memory sizes where it has several)."""
    columns = ["function", "timestamp", "invocations", "cold_starts", "init_p95_ms"]
    if not len(agg.bins):
        return pd.DataFrame(columns=columns)
    rows = []
    for (function, start), group in agg.bins.groupby(["function", "bin_start"], sort=True, observed=True):
        with_cold = group[group["inits"] > 0]
        rows.append({"function": function, "timestamp": start, "invocations": int(group["invocations"].sum()),
                     "cold_starts": int(group["cold_starts"].sum()),
                     "init_p95_ms": _merged(with_cold, _INIT, "inits", 0.95, "init_min_ms")})
    return pd.DataFrame(rows, columns=columns)


def cost_from_aggregates(agg: Aggregates, region: str = "us-east-1", architecture: str | Mapping[str, str] = "x86_64",
                         *, ephemeral_storage_mb: Mapping[str, float] | None = None,
                         provisioned: Mapping[str, int] | None = None, period: tuple | None = None,
                         free_tier: bool = False, package_type: str = "Zip", runtime: str = "python3.12",
                         ) -> pd.DataFrame:
    """``cost_from_reports``' frame from aggregates: the same sums, the same charges, exact."""
    if not len(agg.bins):
        return pd.DataFrame(columns=COST_COLUMNS)
    region_prices(region)
    if period is not None:
        start, end = (pd.Timestamp(p) for p in period)
        hours = max((end - start).total_seconds() / 3600.0, 1 / 60)
    else:
        end, hours = agg.end, window_hours(agg)
    init_billed = init_is_billed(package_type, end.date())
    rows = []
    for function, group in agg.bins.groupby("function", sort=True, observed=True):
        name = str(function)
        arch = architecture.get(name, "x86_64") if isinstance(architecture, Mapping) else architecture
        invocations = float(group["invocations"].sum())
        restores = int(group["restores"].sum())
        row = function_charges(
            invocations=int(invocations), cold_starts=int(group["cold_starts"].sum()), restores=restores,
            gb_s=_gb_s(group, "billed_duration_sum_ms"),
            init_gb_s=_gb_s(group, "init_unbilled_ms") if init_billed else 0.0,
            restore_gb_s=_gb_s(group, "restore_unbilled_ms"),
            restore_mean_memory_mb=float((group["memory_size_mb"] * group["restores"]).sum()) / restores if restores else 0.0,
            billed_s=float(group["billed_duration_sum_ms"].sum()) / 1000.0,
            mean_memory_mb=float((group["memory_size_mb"] * group["invocations"]).sum() / invocations),
            unpriced=0, region=region, arch=arch, runtime=runtime, free_tier=free_tier,
            ephemeral_mb=float((ephemeral_storage_mb or {}).get(name, FREE_EPHEMERAL_MB)),
            provisioned_units=int((provisioned or {}).get(name, 0)), hours=hours)
        row.pop("_unpriced")
        rows.append({"function": name, **row})
    out = pd.DataFrame(rows, columns=COST_COLUMNS)
    out.attrs.update(route="aggregate")
    return out


def duration_percentiles(agg: Aggregates, percentiles: Sequence[float] = (50, 90, 99)) -> pd.DataFrame:
    """Duration percentiles per function over the window, in the tidy metrics layout (source ``logs_insights``)."""
    columns = ["function", "metric", "stat", "timestamp", "value", "source"]
    rows, how = [], {}
    for function, group in agg.window.groupby("function", sort=True, observed=True):
        how[function] = _how(group)
        for p in percentiles:
            value = _merged(group, _DURATION, "invocations", p / 100.0, "duration_min_ms", "duration_max_ms")
            rows.append({"function": function, "metric": "Duration", "stat": f"p{p:g}", "timestamp": agg.start,
                         "value": value, "source": "logs_insights"})
    out = pd.DataFrame(rows, columns=columns)
    out.attrs.update(route="aggregate", percentiles=how)
    return out


def memory_floor_inputs(agg: Aggregates, function: str) -> dict:
    """``memory_floor``'s inputs for one function: ``peak_mb``, ``invocations``, ``oom_at_mb``."""
    part = agg.bins[agg.bins["function"] == function]
    peak = part["max_memory_used_peak_mb"].max() if len(part) else np.nan
    return {"peak_mb": None if pd.isna(peak) else float(peak), "invocations": int(part["invocations"].sum()),
            "oom_at_mb": sorted(int(m) for m in part.loc[part["out_of_memory"] > 0, "memory_size_mb"].unique())}

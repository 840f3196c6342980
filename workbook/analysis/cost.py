"""What Lambda costs: a model from one dated price table, and the actual bill where it is available.

* ``monthly_cost(...)``: one function's month, by charge (requests, duration with tiers, INIT,
  ephemeral storage above 512 MB, provisioned concurrency, SnapStart), free tier optional.
* ``cost_from_reports(reports, ...)``: per-function cost over the period the REPORT rows cover,
  and its projection to a month.
* ``actual_cost(settings, start, end)``: Cost Explorer (GetCostAndUsage, service AWS Lambda,
  tags Project and Environment), shown beside the model. The local endpoint has no bill:
  the model stands alone there, and the result says so.
* ``refresh_prices()``: rebuild the table from the AWS Price List API when credentials allow.

Prices come from ``workbook/analysis/prices.json`` (source and date inside), through
``workbook.analysis.prices``. A region missing from it is an error that names the region, never a
silent default.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infra.config import Settings
from workbook import aws
from workbook.analysis.prices import (
    ARCHITECTURES,
    PRICES_PATH,
    CostError,
    PriceTableError,
    cost_error,
    load_prices,
    need_price,
    refresh_prices,
    region_prices,
)

__all__ = [
    "PRICES_PATH",
    "CostError",
    "PriceTableError",
    "CostBreakdown",
    "function_charges",
    "load_prices",
    "region_prices",
    "monthly_cost",
    "invocation_cost",
    "duration_charge",
    "cost_from_reports",
    "actual_cost",
    "model_beside_actual",
    "refresh_prices",
    "snapstart_charge",
]

SECONDS_PER_MONTH = 730 * 3600          # AWS prices a month as 730 hours
DAYS_PER_MONTH = 730 / 24
FREE_EPHEMERAL_MB = 512


def _check_arch(architecture: str) -> str:
    if architecture not in ARCHITECTURES:
        raise CostError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    return architecture


def duration_charge(gb_seconds: float, architecture: str = "x86_64", region: str = "us-east-1",
                    already_used_gb_s: float = 0.0, path: Path | str | None = None) -> float:
    """USD for ``gb_seconds`` of on-demand duration, walking the tiers from ``already_used_gb_s``."""
    tiers = region_prices(region, path)["duration_gb_s"][_check_arch(architecture)]
    remaining = max(float(gb_seconds), 0.0)
    position = max(float(already_used_gb_s), 0.0)
    usd = 0.0
    for tier in tiers:
        upper = tier["up_to_gb_s"] if tier["up_to_gb_s"] is not None else math.inf
        if position >= upper:
            continue
        amount = min(remaining, upper - position)
        usd += amount * tier["price"]
        remaining -= amount
        position += amount
        if remaining <= 0:
            break
    return usd


# ---------------------------------------------------------------------------------------------
# The model.
# ---------------------------------------------------------------------------------------------
@dataclass
class CostBreakdown:
    """One function's cost, USD, by charge; ``breakdown["total_usd"]`` works too."""

    invocations: float
    memory_mb: float
    architecture: str
    region: str
    billed_duration_ms: float
    gb_seconds: float
    init_gb_seconds: float
    compute_usd: float
    requests_usd: float
    init_usd: float = 0.0
    ephemeral_usd: float = 0.0
    provisioned_usd: float = 0.0
    snapstart_usd: float = 0.0
    free_tier: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return (self.compute_usd + self.requests_usd + self.init_usd + self.ephemeral_usd + self.provisioned_usd
                + self.snapstart_usd)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total_usd"] = self.total_usd
        return out


def init_is_billed(package_type: str, on: date | None) -> bool:
    """Whether Lambda bills the INIT phase of a function of ``package_type`` on the date ``on`` (today if None)."""
    if package_type.lower() != "zip":
        return True
    since = date.fromisoformat(load_prices()["init_billing_since"])
    return (on or datetime.now(UTC).date()) >= since


def snapstart_is_priced(runtime: str) -> bool:
    """Whether SnapStart's cache and restore charges apply: Python and .NET, not Java managed runtimes."""
    return not runtime.lower().startswith("java")


def snapstart_charge(restores: float, memory_mb: float, region: str, *, cached_hours: float = 0.0,
                     runtime: str = "python3.12", path: Path | str | None = None) -> float:
    """USD of SnapStart: ``restores`` x GB restored, plus the snapshot cached ``cached_hours`` (3 h minimum a version).

    Prices and their source are in the table (``regions.<region>.snapstart``). A Java runtime pays
    neither. A region without the prices raises ``PriceTableError`` naming it. A restore's billed
    restore time is duration, already inside its Billed Duration: not charged here.
    """
    if not snapstart_is_priced(runtime) or (not restores and not cached_hours):
        return 0.0
    prices = need_price(region_prices(region, path).get("snapstart"), "SnapStart", region)
    memory_gb = memory_mb / 1024.0
    usd = restores * memory_gb * prices["restore_gb"]
    if cached_hours:
        usd += memory_gb * max(cached_hours, 3.0) * 3600 * prices["cache_gb_s"]
    return usd


def monthly_cost(
    invocations: float,
    avg_duration_ms: float,
    memory_mb: float,
    arch: str = "x86_64",
    region: str = "us-east-1",
    free_tier: bool = True,
    *,
    cold_starts: float = 0.0,
    avg_init_duration_ms: float = 0.0,
    package_type: str = "Zip",
    billing_date: date | None = None,
    ephemeral_storage_mb: float = FREE_EPHEMERAL_MB,
    provisioned_concurrency: int = 0,
    provisioned_hours: float = SECONDS_PER_MONTH / 3600,
    provisioned_share: float | None = None,
    already_used_gb_s: float = 0.0,
    restores: float = 0.0,
    snapstart_cached_hours: float = 0.0,
    runtime: str = "python3.12",
    path: Path | str | None = None,
) -> CostBreakdown:
    """One function's monthly cost, USD.

    ``invocations`` a month, each lasting ``avg_duration_ms`` (billed by the ms: rounded up to
    the next ms) at ``memory_mb``. Duration walks the architecture's tiers (starting at
    ``already_used_gb_s`` for the rest of the account); ``free_tier`` takes 1M requests and
    400,000 GB-s off first. ``cold_starts`` x ``avg_init_duration_ms`` of INIT is billed as
    duration for on-demand functions (zip packages from 1 August 2025). Ephemeral storage
    above 512 MB is billed per GB-s of duration. ``provisioned_concurrency`` environments for
    ``provisioned_hours`` are billed per GB-s, and the ``provisioned_share`` of invocations
    (default: all) they serve pay the lower provisioned duration price. SnapStart: see
    ``snapstart_charge`` (``restores``, ``snapstart_cached_hours``, ``runtime``).
    """
    if invocations < 0 or avg_duration_ms < 0 or memory_mb <= 0:
        raise CostError("invocations and avg_duration_ms must be >= 0 and memory_mb > 0")
    arch = _check_arch(arch)
    prices = region_prices(region, path)
    table = load_prices(path)
    memory_gb = memory_mb / 1024.0
    billed_ms = math.ceil(avg_duration_ms)
    notes: list[str] = []

    share, provisioned_usd = 0.0, 0.0
    if provisioned_concurrency:
        share = 1.0 if provisioned_share is None else min(max(provisioned_share, 0.0), 1.0)
        provisioned_usd = _provisioned_charge(prices, region, arch, provisioned_concurrency * memory_gb * provisioned_hours,
                                              invocations * share * billed_ms / 1000.0 * memory_gb)
        notes.append(f"{share:.0%} of invocations served by {provisioned_concurrency} provisioned environments")

    on_demand = invocations * (1 - share)
    gb_seconds = on_demand * billed_ms / 1000.0 * memory_gb
    init_gb_s = 0.0
    if cold_starts and avg_init_duration_ms:
        if init_is_billed(package_type, billing_date):
            init_gb_s = cold_starts * (1 - share) * math.ceil(avg_init_duration_ms) / 1000.0 * memory_gb
        else:
            notes.append("INIT not billed: zip package before 1 August 2025")

    free_gb_s = table["free_tier"]["gb_seconds"] if free_tier else 0.0
    free_requests = table["free_tier"]["requests"] if free_tier else 0.0
    if free_tier and provisioned_concurrency:
        notes.append("the free tier does not cover provisioned concurrency")
    billable_duration = max(gb_seconds - free_gb_s, 0.0)
    free_left = max(free_gb_s - gb_seconds, 0.0)
    billable_init = max(init_gb_s - free_left, 0.0)
    compute_usd = duration_charge(billable_duration, arch, region, already_used_gb_s, path)
    init_usd = duration_charge(billable_init, arch, region, already_used_gb_s + billable_duration, path)
    requests_usd = max(invocations - free_requests, 0.0) * prices["requests_per_million"] / 1e6

    ephemeral_usd = _ephemeral_charge(prices, region, ephemeral_storage_mb, invocations * billed_ms / 1000.0)
    snapstart_usd = snapstart_charge(restores, memory_mb, region, cached_hours=snapstart_cached_hours, runtime=runtime, path=path)
    return CostBreakdown(
        invocations=invocations, memory_mb=memory_mb, architecture=arch, region=region,
        billed_duration_ms=billed_ms, gb_seconds=gb_seconds, init_gb_seconds=init_gb_s,
        compute_usd=compute_usd, requests_usd=requests_usd, init_usd=init_usd,
        ephemeral_usd=ephemeral_usd, provisioned_usd=provisioned_usd, snapstart_usd=snapstart_usd,
        free_tier=free_tier, notes=notes,
    )


def _provisioned_charge(prices: dict, region: str, arch: str, gb_hours: float, served_gb_s: float) -> float:
    """USD of provisioned environments kept ``gb_hours``, and of the ``served_gb_s`` of duration they run."""
    pc = need_price(prices.get("provisioned_concurrency"), "provisioned concurrency", region)[arch]
    return gb_hours * 3600 * pc["concurrency_gb_s"] + served_gb_s * pc["duration_gb_s"]


def _ephemeral_charge(prices: dict, region: str, storage_mb: float, seconds: float) -> float:
    """USD of ephemeral storage above the free 512 MB over ``seconds`` of billed duration."""
    if storage_mb <= FREE_EPHEMERAL_MB:
        return 0.0
    price = need_price(prices.get("ephemeral_storage_gb_s"), "ephemeral storage", region)
    return seconds * (storage_mb - FREE_EPHEMERAL_MB) / 1024.0 * price


def invocation_cost(billed_duration_ms: float, memory_mb: float, arch: str = "x86_64", region: str = "us-east-1",
                    include_request: bool = True) -> float:
    """USD of one invocation at first-tier prices, no free tier."""
    prices = region_prices(region)
    first_tier = prices["duration_gb_s"][_check_arch(arch)][0]["price"]
    usd = math.ceil(billed_duration_ms) / 1000.0 * memory_mb / 1024.0 * first_tier
    return usd + (prices["requests_per_million"] / 1e6 if include_request else 0.0)


COST_COLUMNS = ["function", "invocations", "cold_starts", "restores", "gb_seconds", "init_gb_seconds", "requests_usd",
                "compute_usd", "init_usd", "ephemeral_usd", "provisioned_usd", "snapstart_usd", "total_usd",
                "period_hours", "monthly_projection_usd"]


def restored(reports: pd.DataFrame) -> pd.Series:
    """Which REPORT rows are SnapStart restores (``start_type``, else a ``restore_duration_ms``)."""
    if "start_type" in reports:
        return (reports["start_type"].astype(str) == "restore").astype(bool)
    if "restore_duration_ms" in reports:
        return reports["restore_duration_ms"].notna().astype(bool)
    return pd.Series(False, index=reports.index)


def cost_from_reports(
    reports: pd.DataFrame,
    region: str = "us-east-1",
    architecture: str | Mapping[str, str] = "x86_64",
    *,
    ephemeral_storage_mb: Mapping[str, float] | None = None,
    provisioned: Mapping[str, int] | None = None,
    period: tuple[Any, Any] | None = None,
    free_tier: bool = False,
    package_type: str = "Zip",
    runtime: str = "python3.12",
) -> pd.DataFrame:
    """Per function: the cost of the invocations in ``reports`` (REPORT rows), and a monthly projection.

    Exact per-invocation billing (each REPORT's billed ms x its memory). INIT is added for
    cold starts when it is billed and the REPORT's Billed Duration does not already include
    it. A SnapStart restore pays per GB restored (``snapstart_usd``; Python and .NET
    ``runtime``, priced from the table's cited SnapStart prices); its Billed Restore Duration is
    inside Billed Duration, and is added (to ``snapstart_usd``) only where it is not. Rows without a billed duration or
    memory (Lambda Managed Instances, billed by their EC2 capacity) pay requests only, and
    ``attrs["note"]`` says how many. ``period`` (start, end) defaults to the rows' first and last
    timestamps. Columns: ``COST_COLUMNS``. The free tier is off by default (it is per account,
    not per function).
    """
    if reports is None or len(reports) == 0:
        return pd.DataFrame(columns=COST_COLUMNS)
    region_prices(region)  # fail early, naming the region
    if period is not None:
        start, end = (pd.Timestamp(p) for p in period)
    else:
        start, end = reports["timestamp"].min(), reports["timestamp"].max()
    hours = max((end - start).total_seconds() / 3600.0, 1 / 60) if pd.notna(start) and pd.notna(end) else float("nan")
    init_billed = init_is_billed(package_type, end.date() if pd.notna(end) else None)
    rows, unpriced = [], 0
    for function, group in reports.groupby("function", dropna=False, observed=True):
        name = str(function) if pd.notna(function) else "(unknown)"
        arch = architecture.get(name, "x86_64") if isinstance(architecture, Mapping) else architecture
        row = _function_cost(group, region, arch, init_billed=init_billed, runtime=runtime, free_tier=free_tier,
                             ephemeral_mb=float((ephemeral_storage_mb or {}).get(name, FREE_EPHEMERAL_MB)),
                             provisioned_units=int((provisioned or {}).get(name, 0)), hours=hours)
        unpriced += row.pop("_unpriced")
        rows.append({"function": name, **row})
    frame = pd.DataFrame(rows, columns=COST_COLUMNS)
    if unpriced:
        frame.attrs["note"] = (f"{unpriced} invocations report no billed duration or memory (Lambda Managed Instances): "
                               "their requests are counted, their compute is billed with the capacity provider's EC2 "
                               "instances and is not modelled here")
    return frame


def _function_cost(group: pd.DataFrame, region: str, arch: str, *, init_billed: bool, runtime: str, free_tier: bool,
                   ephemeral_mb: float, provisioned_units: int, hours: float) -> dict[str, Any]:
    """One function's charges over its REPORT rows (see ``cost_from_reports``)."""
    priced = (group["billed_duration_ms"].notna() & group["memory_size_mb"].notna()).to_numpy(dtype=bool)
    memory_gb = group["memory_size_mb"].astype(float).fillna(0.0).to_numpy() / 1024.0
    billed_ms = group["billed_duration_ms"].astype(float).fillna(0.0).to_numpy()
    duration_ms = group["duration_ms"].astype(float).fillna(0.0).to_numpy()
    gb_s = float((billed_ms / 1000.0 * memory_gb).sum())
    init = group["init_duration_ms"].astype(float).fillna(0.0).to_numpy()
    init_extra = np.where(priced & (init > 0) & (billed_ms < np.ceil(duration_ms + init)) & init_billed,
                          np.ceil(init) / 1000.0, 0.0)
    restores = restored(group).to_numpy(dtype=bool) & priced
    billed_restore = (group["billed_restore_duration_ms"].astype(float).fillna(0.0).to_numpy()
                      if "billed_restore_duration_ms" in group else np.zeros(len(group)))
    restore_extra = np.where(restores & (billed_ms < np.ceil(duration_ms + billed_restore)), billed_restore / 1000.0, 0.0)
    n_restores = int(restores.sum())
    return function_charges(
        invocations=len(group), cold_starts=int(group["cold_start"].sum()), restores=n_restores, gb_s=gb_s,
        init_gb_s=float((init_extra * memory_gb).sum()), restore_gb_s=float((restore_extra * memory_gb).sum()),
        restore_mean_memory_mb=float(memory_gb[restores].mean()) * 1024.0 if n_restores else 0.0,
        billed_s=float(billed_ms.sum()) / 1000.0, mean_memory_mb=float(group["memory_size_mb"].astype(float).mean()),
        unpriced=int((~priced).sum()), region=region, arch=arch, runtime=runtime, free_tier=free_tier,
        ephemeral_mb=ephemeral_mb, provisioned_units=provisioned_units, hours=hours)


def function_charges(*, invocations: int, cold_starts: int, restores: int, gb_s: float, init_gb_s: float,
                     restore_gb_s: float, restore_mean_memory_mb: float, billed_s: float, mean_memory_mb: float,
                     unpriced: int, region: str, arch: str, runtime: str, free_tier: bool, ephemeral_mb: float,
                     provisioned_units: int, hours: float) -> dict[str, Any]:
    """One function's charges from its sums (GB-s billed, unbilled INIT GB-s, billed s, counts): one row of
    ``cost_from_reports``. The raw route sums REPORT rows; the aggregate route gets the same sums from Logs Insights."""
    prices = region_prices(region)
    requests_usd = monthly_cost(invocations, 0.0, 128, arch, region, free_tier).requests_usd   # requests only
    compute = duration_charge(gb_s, arch, region)
    init_usd = duration_charge(init_gb_s, arch, region, gb_s)
    snapstart_usd = duration_charge(restore_gb_s, arch, region, gb_s + init_gb_s)
    if restores:  # per GB restored: the restores' count times their mean memory
        snapstart_usd += snapstart_charge(restores, restore_mean_memory_mb, region, runtime=runtime)
    ephemeral_usd = _ephemeral_charge(prices, region, ephemeral_mb, billed_s)
    provisioned_usd = 0.0
    if provisioned_units and hours == hours:
        provisioned_usd = _provisioned_charge(prices, region, arch, provisioned_units * mean_memory_mb / 1024.0 * hours,
                                              0.0)
    total = requests_usd + compute + init_usd + ephemeral_usd + provisioned_usd + snapstart_usd
    return {
        "invocations": invocations, "cold_starts": cold_starts, "restores": restores,
        "gb_seconds": gb_s, "init_gb_seconds": init_gb_s, "requests_usd": requests_usd, "compute_usd": compute,
        "init_usd": init_usd, "ephemeral_usd": ephemeral_usd, "provisioned_usd": provisioned_usd,
        "snapstart_usd": snapstart_usd, "total_usd": total, "period_hours": hours,
        "monthly_projection_usd": total * (SECONDS_PER_MONTH / 3600.0) / hours if hours == hours else float("nan"),
        "_unpriced": unpriced,
    }


# ---------------------------------------------------------------------------------------------
# The bill: Cost Explorer.
# ---------------------------------------------------------------------------------------------
LAMBDA_SERVICE = "AWS Lambda"


def actual_cost(settings: Settings, start: Any, end: Any, *, client: Any = None, granularity: str = "DAILY") -> pd.DataFrame:
    """Lambda's actual cost per day from Cost Explorer, for the stack's Project and Environment tags.

    On the local endpoint there is no bill: returns an empty frame with ``attrs["source"] =
    "model only"`` and ``attrs["note"]`` saying so. A denied or unavailable Cost Explorer
    raises ``CostError`` with what to enable.
    """
    columns = ["start", "end", "cost_usd"]
    if aws.is_local() and client is None:
        frame = pd.DataFrame(columns=columns)
        frame.attrs.update(source="model only",
                           note="the local endpoint has no Cost Explorer: the modelled cost stands alone")
        return frame
    start_day, end_day = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if end_day <= start_day:
        raise CostError(f"the Cost Explorer range is empty: {start_day} .. {end_day} (end is exclusive)")
    client = client or aws.client("ce", "us-east-1")
    tags = settings.tags
    request = {
        "TimePeriod": {"Start": start_day.isoformat(), "End": end_day.isoformat()},
        "Granularity": granularity,
        "Metrics": ["UnblendedCost"],
        "Filter": {"And": [
            {"Dimensions": {"Key": "SERVICE", "Values": [LAMBDA_SERVICE]}},
            {"Tags": {"Key": "Project", "Values": [tags["Project"]]}},
            {"Tags": {"Key": "Environment", "Values": [tags["Environment"]]}},
        ]},
    }
    rows = []
    token = None
    while True:
        if token:
            request["NextPageToken"] = token
        try:
            answer = client.get_cost_and_usage(**request)
        except Exception as exc:
            raise cost_error(exc) from exc
        for result in answer.get("ResultsByTime", []):
            amount = result.get("Total", {}).get("UnblendedCost", {}).get("Amount", "0")
            rows.append({"start": pd.Timestamp(result["TimePeriod"]["Start"]), "end": pd.Timestamp(result["TimePeriod"]["End"]),
                         "cost_usd": float(amount)})
        token = answer.get("NextPageToken")
        if not token:
            break
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs.update(source="cost explorer",
                       note="Cost Explorer shows tagged cost only once the Project and Environment tags are activated "
                            "as cost allocation tags")
    return frame


def model_beside_actual(settings: Settings, reports: pd.DataFrame, start: Any, end: Any, *, client: Any = None,
                        architecture: str | Mapping[str, str] | None = None) -> pd.DataFrame:
    """Modelled cost (from REPORT rows) beside Cost Explorer's, per day, for the environment.

    Columns: day, modelled_usd, actual_usd (NaN where Cost Explorer has nothing: the local
    endpoint, or a denied account, which ``attrs["note"]`` explains). Provisioned concurrency
    and ephemeral storage come from the environment's settings.
    """
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    start_ts = start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts
    end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts
    if end_ts <= start_ts:
        raise CostError(f"the range is empty: {start_ts} .. {end_ts}")
    days = pd.date_range(start_ts.floor("D"), end_ts.ceil("D"), freq="D", inclusive="left")
    arch = architecture or {fn.key: fn.architecture for fn in settings.functions}
    provisioned = {fn.key: fn.provisioned_concurrency.min_capacity for fn in settings.functions if fn.provisioned_concurrency}
    ephemeral = {fn.key: fn.ephemeral_storage_mb for fn in settings.functions}
    modelled = []
    for day in days:
        in_day = (reports["timestamp"] >= day) & (reports["timestamp"] < day + pd.Timedelta(days=1)) if len(reports) else None
        rows = reports[in_day] if in_day is not None else reports
        frame = cost_from_reports(rows, settings.params.aws_region, arch, ephemeral_storage_mb=ephemeral,
                                  provisioned=provisioned, period=(day, day + pd.Timedelta(days=1)))
        modelled.append(float(frame["total_usd"].sum()) if len(frame) else 0.0)
    out = pd.DataFrame({"day": days, "modelled_usd": modelled, "actual_usd": np.nan})
    note = ""
    try:
        actual = actual_cost(settings, days[0], days[-1] + pd.Timedelta(days=1), client=client)
        note = actual.attrs.get("note", "")
        if len(actual):
            by_day = actual.set_index(actual["start"].dt.tz_localize("UTC") if actual["start"].dt.tz is None
                                      else actual["start"])["cost_usd"]
            out["actual_usd"] = out["day"].map(by_day)
    except CostError as exc:
        note = f"model only: {exc}"
    out.attrs["note"] = note
    return out

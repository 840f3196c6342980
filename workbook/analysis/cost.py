"""What Lambda costs: a model from one dated price table, and the actual bill where it is available.

* ``monthly_cost(...)``: one function's month, by charge (requests, duration with tiers, INIT,
  ephemeral storage above 512 MB, provisioned concurrency), free tier optional.
* ``cost_from_reports(reports, ...)``: per-function cost over the period the REPORT rows cover,
  and its projection to a month.
* ``actual_cost(settings, start, end)``: Cost Explorer (GetCostAndUsage, service AWS Lambda,
  tags Project and Environment), shown beside the model. The local endpoint has no bill:
  the model stands alone there, and the result says so.
* ``refresh_prices()``: rebuild the table from the AWS Price List API when credentials allow.

Prices come from ``workbook/analysis/prices.json`` (source and date inside). A region missing from
it is an error that names the region, never a silent default.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from infra.config import Settings
from workbook import aws
from workbook.errors import WorkbookError

__all__ = [
    "PRICES_PATH",
    "CostError",
    "PriceTableError",
    "CostBreakdown",
    "load_prices",
    "region_prices",
    "monthly_cost",
    "invocation_cost",
    "duration_charge",
    "cost_from_reports",
    "actual_cost",
    "model_beside_actual",
    "refresh_prices",
]

PRICES_PATH = Path(__file__).resolve().parent / "prices.json"
SECONDS_PER_MONTH = 730 * 3600          # AWS prices a month as 730 hours
DAYS_PER_MONTH = 730 / 24
FREE_EPHEMERAL_MB = 512
ARCHITECTURES = ("x86_64", "arm64")


class CostError(WorkbookError):
    """Cost could not be computed or fetched; the message says what to do."""


class PriceTableError(CostError, KeyError):
    """The price table lacks a region or a price; the message names it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------------------------------
# The price table.
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PriceTableError(f"price table {path} is missing; reinstall the workbook or run refresh_prices()") from None


def load_prices(path: Path | str | None = None) -> dict:
    """The whole price table (source, date, free tier, regions)."""
    return _load(str(path or PRICES_PATH))


def region_prices(region: str, path: Path | str | None = None) -> dict:
    """One region's prices; a region not in the table raises ``PriceTableError`` naming it."""
    table = load_prices(path)
    try:
        return table["regions"][region]
    except KeyError:
        known = ", ".join(sorted(table["regions"]))
        raise PriceTableError(
            f"region {region!r} is not in the price table {Path(path or PRICES_PATH).name} "
            f"(regions: {known}); run workbook.analysis.cost.refresh_prices(['{region}']) with AWS credentials to add it"
        ) from None


def _need(value: Any, what: str, region: str) -> Any:
    if value is None:
        raise PriceTableError(
            f"the price table has no {what} price for region {region!r}; "
            f"run workbook.analysis.cost.refresh_prices(['{region}']) with AWS credentials, or leave that charge out"
        )
    return value


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
    free_tier: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.requests_usd + self.init_usd + self.ephemeral_usd + self.provisioned_usd

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
    (default: all) they serve pay the lower provisioned duration price.
    """
    if invocations < 0 or avg_duration_ms < 0 or memory_mb <= 0:
        raise CostError("invocations and avg_duration_ms must be >= 0 and memory_mb > 0")
    arch = _check_arch(arch)
    prices = region_prices(region, path)
    table = load_prices(path)
    memory_gb = memory_mb / 1024.0
    billed_ms = math.ceil(avg_duration_ms)
    notes: list[str] = []

    share = 0.0
    provisioned_usd = 0.0
    if provisioned_concurrency:
        pc = _need(prices.get("provisioned_concurrency"), "provisioned concurrency", region)[arch]
        share = 1.0 if provisioned_share is None else min(max(provisioned_share, 0.0), 1.0)
        provisioned_usd += provisioned_concurrency * memory_gb * provisioned_hours * 3600 * pc["concurrency_gb_s"]
        provisioned_usd += invocations * share * billed_ms / 1000.0 * memory_gb * pc["duration_gb_s"]
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

    ephemeral_usd = 0.0
    if ephemeral_storage_mb > FREE_EPHEMERAL_MB:
        price = _need(prices.get("ephemeral_storage_gb_s"), "ephemeral storage", region)
        seconds = invocations * billed_ms / 1000.0
        ephemeral_usd = seconds * (ephemeral_storage_mb - FREE_EPHEMERAL_MB) / 1024.0 * price

    return CostBreakdown(
        invocations=invocations, memory_mb=memory_mb, architecture=arch, region=region,
        billed_duration_ms=billed_ms, gb_seconds=gb_seconds, init_gb_seconds=init_gb_s,
        compute_usd=compute_usd, requests_usd=requests_usd, init_usd=init_usd,
        ephemeral_usd=ephemeral_usd, provisioned_usd=provisioned_usd, free_tier=free_tier, notes=notes,
    )


def invocation_cost(billed_duration_ms: float, memory_mb: float, arch: str = "x86_64", region: str = "us-east-1",
                    include_request: bool = True) -> float:
    """USD of one invocation at first-tier prices, no free tier."""
    prices = region_prices(region)
    first_tier = prices["duration_gb_s"][_check_arch(arch)][0]["price"]
    usd = math.ceil(billed_duration_ms) / 1000.0 * memory_mb / 1024.0 * first_tier
    return usd + (prices["requests_per_million"] / 1e6 if include_request else 0.0)


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
) -> pd.DataFrame:
    """Per function: the cost of the invocations in ``reports`` (REPORT rows), and a monthly projection.

    Exact per-invocation billing (each REPORT's billed ms x its memory). INIT is added for
    cold starts when it is billed and the REPORT's Billed Duration does not already include
    it. ``period`` (start, end) defaults to the rows' first and last timestamps. Columns:
    function, invocations, cold_starts, gb_seconds, init_gb_seconds, requests_usd,
    compute_usd, init_usd, ephemeral_usd, provisioned_usd, total_usd, period_hours,
    monthly_projection_usd. The free tier is off by default (it is per account, not per
    function).
    """
    columns = ["function", "invocations", "cold_starts", "gb_seconds", "init_gb_seconds", "requests_usd",
               "compute_usd", "init_usd", "ephemeral_usd", "provisioned_usd", "total_usd", "period_hours",
               "monthly_projection_usd"]
    if reports is None or len(reports) == 0:
        return pd.DataFrame(columns=columns)
    region_prices(region)  # fail early, naming the region
    if period is not None:
        start, end = (pd.Timestamp(p) for p in period)
    else:
        start, end = reports["timestamp"].min(), reports["timestamp"].max()
    hours = max((end - start).total_seconds() / 3600.0, 1 / 60) if pd.notna(start) and pd.notna(end) else float("nan")
    init_billed = init_is_billed(package_type, end.date() if pd.notna(end) else None)
    rows = []
    for function, group in reports.groupby("function", dropna=False, observed=True):
        name = str(function) if pd.notna(function) else "(unknown)"
        arch = architecture.get(name, "x86_64") if isinstance(architecture, Mapping) else architecture
        memory_gb = group["memory_size_mb"].astype(float) / 1024.0
        billed_s = group["billed_duration_ms"].astype(float) / 1000.0
        gb_s = float((billed_s * memory_gb).sum())
        init = group["init_duration_ms"].fillna(0.0).astype(float)
        already = group["billed_duration_ms"] >= np.ceil(group["duration_ms"] + init)
        init_extra = np.where((init > 0) & ~already, np.ceil(init) / 1000.0, 0.0) if init_billed else np.zeros(len(group))
        init_gb_s = float((init_extra * memory_gb).sum())
        n = len(group)
        pc_units = int((provisioned or {}).get(name, 0))
        mean_memory = float(group["memory_size_mb"].mean())
        ephemeral = float((ephemeral_storage_mb or {}).get(name, FREE_EPHEMERAL_MB))
        breakdown = monthly_cost(
            n, 0.0, mean_memory, arch, region, free_tier, ephemeral_storage_mb=FREE_EPHEMERAL_MB, path=None,
        )
        prices = region_prices(region)
        compute = duration_charge(gb_s, arch, region)
        init_usd = duration_charge(init_gb_s, arch, region, gb_s)
        ephemeral_usd = 0.0
        if ephemeral > FREE_EPHEMERAL_MB:
            price = _need(prices.get("ephemeral_storage_gb_s"), "ephemeral storage", region)
            ephemeral_usd = float(billed_s.sum()) * (ephemeral - FREE_EPHEMERAL_MB) / 1024.0 * price
        provisioned_usd = 0.0
        if pc_units and hours == hours:
            pc = _need(prices.get("provisioned_concurrency"), "provisioned concurrency", region)[arch]
            provisioned_usd = pc_units * mean_memory / 1024.0 * hours * 3600 * pc["concurrency_gb_s"]
        total = breakdown.requests_usd + compute + init_usd + ephemeral_usd + provisioned_usd
        rows.append({
            "function": name, "invocations": n, "cold_starts": int(group["cold_start"].sum()),
            "gb_seconds": gb_s, "init_gb_seconds": init_gb_s, "requests_usd": breakdown.requests_usd,
            "compute_usd": compute, "init_usd": init_usd, "ephemeral_usd": ephemeral_usd,
            "provisioned_usd": provisioned_usd, "total_usd": total, "period_hours": hours,
            "monthly_projection_usd": total * (SECONDS_PER_MONTH / 3600.0) / hours if hours == hours else float("nan"),
        })
    return pd.DataFrame(rows, columns=columns)


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
            raise _cost_error(exc) from exc
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


def _cost_error(exc: Exception, what: str = "Cost Explorer", permission: str = "ce:GetCostAndUsage") -> CostError:
    if isinstance(exc, NoCredentialsError):
        return CostError(f"no AWS credentials: {what} needs them (the modelled cost still works)")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("AccessDeniedException", "AccessDenied"):
            return CostError(f"{what} denied ({code}): grant {permission}, or use the modelled cost alone")
        if code == "DataUnavailableException":
            return CostError(f"{what} has no data yet for this account (enable Cost Explorer in the Billing console; "
                             "data takes 24 h)")
        if code in ("LimitExceededException", "ThrottlingException", "RequestLimitExceeded"):
            return CostError(f"{what} throttled the request after retries ({code}); try again later")
        return CostError(f"{what} failed: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return CostError(f"{what} failed: {exc}")
    return CostError(str(exc))


# ---------------------------------------------------------------------------------------------
# Refreshing the table from the AWS Price List API.
# ---------------------------------------------------------------------------------------------
# Usage types (suffix after the region prefix) -> where the price goes in the table.
_USAGE_TYPES = {
    "Lambda-GB-Second": ("duration_gb_s", "x86_64"),
    "Lambda-GB-Second-ARM": ("duration_gb_s", "arm64"),
    "Request": ("requests", "x86_64"),
    "Lambda-Provisioned-Concurrency": ("pc_concurrency", "x86_64"),
    "Lambda-Provisioned-Concurrency-ARM": ("pc_concurrency", "arm64"),
    "Lambda-Provisioned-GB-Second": ("pc_duration", "x86_64"),
    "Lambda-Provisioned-GB-Second-ARM": ("pc_duration", "arm64"),
    "Lambda-Storage-Duration": ("ephemeral", "x86_64"),
    "Lambda-Storage-Duration-ARM": ("ephemeral", "arm64"),
}


def refresh_prices(regions: Sequence[str] | None = None, *, path: Path | str | None = None, client: Any = None,
                   write: bool = True) -> dict:
    """Rebuild regions of the price table from the AWS Price List API (``pricing:GetProducts``).

    Needs AWS credentials; on the local endpoint or without credentials it raises
    ``CostError`` saying so. Returns the new table; ``write`` saves it over ``path``.
    """
    if aws.is_local() and client is None:
        raise CostError("refresh_prices() needs the AWS Price List API; the local endpoint has none (the shipped table stays)")
    target = Path(path or PRICES_PATH)
    table = json.loads(json.dumps(load_prices(target if target.is_file() else PRICES_PATH)))
    regions = list(regions or table["regions"])
    client = client or aws.client("pricing", "us-east-1")
    for region in regions:
        entry = _fetch_region(client, region)
        table["regions"][region] = entry
    table["compiled"] = datetime.now(UTC).date().isoformat()
    table["source"] = "AWS Price List API (pricing:GetProducts, ServiceCode AWSLambda)"
    if write:
        target.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
        _load.cache_clear()
    return table


def _fetch_region(client: Any, region: str) -> dict:
    found: dict[tuple[str, str], list[tuple[float, float | None, float]]] = {}
    token = None
    while True:
        kwargs = {"ServiceCode": "AWSLambda", "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
                  "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        try:
            answer = client.get_products(**kwargs)
        except Exception as exc:
            raise _cost_error(exc, "the AWS Price List API", "pricing:GetProducts") from exc
        for item in answer.get("PriceList", []):
            product = json.loads(item) if isinstance(item, str) else item
            usage = product.get("product", {}).get("attributes", {}).get("usagetype", "")
            suffix = usage.split("-", 1)[1] if "-" in usage and not usage.startswith("Lambda") else usage
            kind = _USAGE_TYPES.get(suffix)
            if not kind:
                continue
            for term in product.get("terms", {}).get("OnDemand", {}).values():
                for dim in term.get("priceDimensions", {}).values():
                    price = float(dim["pricePerUnit"]["USD"])
                    begin = float(dim.get("beginRange", 0) or 0)
                    end = dim.get("endRange", "Inf")
                    found.setdefault(kind, []).append((begin, None if end in ("Inf", None) else float(end), price))
        token = answer.get("NextToken")
        if not token:
            break
    if ("duration_gb_s", "x86_64") not in found:
        raise CostError(f"the Price List API returned no Lambda duration price for {region!r}; check the region code")

    def tiers(arch: str) -> list[dict]:
        rows = sorted(found.get(("duration_gb_s", arch), []))
        return [{"up_to_gb_s": end, "price": price} for _, end, price in rows if price > 0]

    def single(kind: str, arch: str) -> float | None:
        rows = [p for _, _, p in found.get((kind, arch), []) if p > 0]
        return min(rows) if rows else None

    requests = single("requests", "x86_64")
    pc = None
    if single("pc_concurrency", "x86_64") is not None:
        pc = {arch: {"concurrency_gb_s": single("pc_concurrency", arch), "duration_gb_s": single("pc_duration", arch)}
              for arch in ARCHITECTURES}
    return {
        "requests_per_million": requests * 1e6 if requests is not None else None,
        "duration_gb_s": {arch: tiers(arch) for arch in ARCHITECTURES},
        "ephemeral_storage_gb_s": single("ephemeral", "x86_64"),
        "provisioned_concurrency": pc,
    }

"""The dated price table (``prices.json``, with its source): loading it, one region's prices, refreshing it.

``refresh_prices()`` rebuilds regions from the AWS Price List API when credentials allow. A
region or a price missing from the table is an error that names it, never a silent default.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from workbook import aws
from workbook.errors import WorkbookError

__all__ = ["ARCHITECTURES", "PRICES_PATH", "CostError", "PriceTableError", "cost_error", "load_prices", "need_price",
           "refresh_prices", "region_prices"]

PRICES_PATH = Path(__file__).resolve().parent / "prices.json"
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


def need_price(value: Any, what: str, region: str) -> Any:
    if value is None:
        raise PriceTableError(
            f"the price table has no {what} price for region {region!r}; "
            f"run workbook.analysis.cost.refresh_prices(['{region}']) with AWS credentials, or leave that charge out"
        )
    return value


def cost_error(exc: Exception, what: str = "Cost Explorer", permission: str = "ce:GetCostAndUsage") -> CostError:
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
        # SnapStart's usage types are not read here: the table's own prices (with their source) stay
        entry["snapstart"] = table["regions"].get(region, {}).get("snapstart")
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
            raise cost_error(exc, "the AWS Price List API", "pricing:GetProducts") from exc
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

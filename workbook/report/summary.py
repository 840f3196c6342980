"""The one-page view (notebook 00-summary), built from what the other notebooks recorded.

Each detail notebook glues its key results with scrapbook under the names below; the summary
reads them from the run folder. A notebook that did not run, or recorded nothing, shows as
missing rather than failing the summary.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbook.report import record

# Scrap names per notebook: the contract between the detail notebooks and this summary.
SCRAPS = {
    "01-deploy": ("deploy_mode", "deploy_message", "resource_count", "resource_changes"),
    "02-metrics": ("health", "alarms_in_alarm", "percentile_source"),
    "03-cold-starts": ("cold_starts",),
    "04-cost": ("cost", "cost_total_usd", "cost_monthly_usd", "cost_source"),
    "05-tuning": ("recommendations", "params_patch"),
}
DETAIL_NOTEBOOKS = tuple(SCRAPS)


@dataclass
class Summary:
    """Headline sentences, tables and links for a reader in a hurry."""

    headlines: list[str] = field(default_factory=list)
    health: pd.DataFrame = field(default_factory=pd.DataFrame)
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: list[str] = field(default_factory=list)

    def links(self) -> str:
        names = {"01-deploy": "Deploy", "02-metrics": "Metrics", "03-cold-starts": "Cold starts",
                 "04-cost": "Cost", "05-tuning": "Tuning"}
        return " · ".join(f"[{title}](#{name})" for name, title in names.items())


def collect(run_folder: str | Path) -> dict[str, dict[str, Any]]:
    """The scraps of each detail notebook present in the run folder."""
    folder = Path(run_folder)
    found: dict[str, dict[str, Any]] = {}
    for name in DETAIL_NOTEBOOKS:
        path = folder / f"{name}.ipynb"
        if path.is_file():
            found[name] = record.read(path)
    return found


def build(scraps: dict[str, dict[str, Any]]) -> Summary:
    """Turn the notebooks' scraps into the summary."""
    summary = Summary()
    summary.missing = [name for name in DETAIL_NOTEBOOKS if not scraps.get(name)]
    deploy = scraps.get("01-deploy", {})
    if deploy:
        summary.headlines.append(deploy.get("deploy_message") or f"Deploy mode: {deploy.get('deploy_mode')}.")

    health = pd.DataFrame(scraps.get("02-metrics", {}).get("health") or [])
    cold = pd.DataFrame(scraps.get("03-cold-starts", {}).get("cold_starts") or [])
    if not health.empty:
        if not cold.empty and {"function", "cold_start_rate"} <= set(cold.columns):
            health = health.merge(cold[["function", "cold_start_rate"]], on="function", how="left")
        order = ["function", "invocations", "errors", "error_rate_pct", "throttles", "p50_ms", "p99_ms",
                 "p99_pct_of_timeout", "cold_start_rate"]
        summary.health = health[[c for c in order if c in health.columns]]
        total = int(health.get("invocations", pd.Series(dtype=float)).fillna(0).sum())
        errors = int(health.get("errors", pd.Series(dtype=float)).fillna(0).sum())
        throttles = int(health.get("throttles", pd.Series(dtype=float)).fillna(0).sum())
        rate = 100.0 * errors / total if total else 0.0
        summary.headlines.append(
            f"{total:,} invocations, {errors:,} errors ({rate:.2f}%), {throttles:,} throttles across "
            f"{len(health)} functions.")
    alarms = scraps.get("02-metrics", {}).get("alarms_in_alarm")
    if alarms:
        summary.headlines.append(f"**{len(alarms)} alarm(s) in ALARM:** {', '.join(alarms)}.")
    elif alarms is not None:
        summary.headlines.append("No alarm is in ALARM.")

    cost = scraps.get("04-cost", {})
    if cost:
        costs = pd.DataFrame(cost.get("cost") or [])
        summary.cost = costs[[c for c in ("function", "total_usd", "monthly_projection_usd") if c in costs.columns]]
        monthly = cost.get("cost_monthly_usd")
        if monthly is not None:
            summary.headlines.append(
                f"Cost projected to a month: **${monthly:,.2f}** ({cost.get('cost_source', 'model')}).")

    recs = pd.DataFrame(scraps.get("05-tuning", {}).get("recommendations") or [])
    if not recs.empty:
        if "monthly_saving_usd" in recs.columns:
            recs["monthly_saving_usd"] = pd.to_numeric(recs["monthly_saving_usd"], errors="coerce")
            recs = recs.sort_values("monthly_saving_usd", ascending=False, na_position="last")
        order = ["function", "kind", "current", "recommended", "monthly_saving_usd", "confidence", "reason"]
        changes = recs[recs["current"].astype(str) != recs["recommended"].astype(str)] \
            if {"current", "recommended"} <= set(recs.columns) else recs
        summary.recommendations = changes[[c for c in order if c in changes.columns]].head(5).reset_index(drop=True)
        summary.headlines.append(f"{len(summary.recommendations)} change(s) recommended; the top ones are below.")
    elif "05-tuning" in scraps:
        summary.headlines.append("No tuning recommendation: the current settings hold.")
    if summary.missing:
        summary.headlines.append(f"Not in this run: {', '.join(summary.missing)}.")
    return summary

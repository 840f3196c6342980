"""The one-page view (notebook 00-summary), built from what the other notebooks recorded.

Each detail notebook glues its key results with scrapbook under the names below; the summary
reads them from the run folder. A notebook that did not run, or recorded nothing, shows as
missing rather than failing the summary.

Tuning rows carry a status: only ``recommend`` rows at or above ``min_confidence`` are "Top
recommendations"; ``insufficient-data`` rows (and any ``recommend`` below the threshold) are
"Needs more data", with what to collect; ``keep`` rows are counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbook.report import folders, record
from workbook.tuning.defaults import MIN_CONFIDENCE

# Scrap names per notebook: the contract between the detail notebooks and this summary.
SCRAPS = {
    "01-deploy": ("deploy_mode", "deploy_message", "resource_count", "resource_changes"),
    "02-metrics": ("health", "alarms_in_alarm", "percentile_source", "pipeline"),
    "03-cold-starts": ("cold_starts",),
    "04-cost": ("cost", "cost_total_usd", "cost_monthly_usd", "cost_source"),
    "05-tuning": ("recommendations", "params_patch", "timeout_backtest", "compute_optimizer"),
}
DETAIL_NOTEBOOKS = tuple(SCRAPS)


@dataclass
class Summary:
    """Headline sentences, tables and links for a reader in a hurry."""

    headlines: list[str] = field(default_factory=list)
    health: pd.DataFrame = field(default_factory=pd.DataFrame)
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    needs_data: pd.DataFrame = field(default_factory=pd.DataFrame)
    compute_optimizer: pd.DataFrame = field(default_factory=pd.DataFrame)
    compute_optimizer_note: str = ""
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def links(self, in_runbook: bool = True) -> str:
        """Links to the detail: the runbook's sections (``#01-deploy``), or in JupyterLab the notebooks beside this one."""
        names = {"01-deploy": "Deploy", "02-metrics": "Metrics", "03-cold-starts": "Cold starts",
                 "04-cost": "Cost", "05-tuning": "Tuning"}
        return " · ".join(f"[{title}]({'#' + name if in_runbook else name + '.ipynb'})" for name, title in names.items())


def choose_run(env: str, run_folder: str | Path | None = None, outputs_dir: str | Path | None = None,
               ) -> tuple[Path | None, str]:
    """The run folder to summarise and a sentence saying which: ``run_folder``, else the env's ``latest`` run.

    Without either, the sentence says in one line how to make or choose one.
    """
    if run_folder:
        return Path(run_folder), f"Run folder `{run_folder}`."
    root = folders.outputs_root(Path(outputs_dir) if outputs_dir else None)
    latest = root / env / "latest"
    if latest.is_dir():
        folder = latest.resolve()
        return folder, (f"Showing the latest finished run of **{env}**: `{folder}`. To open another, set "
                        f"`run_folder` in the parameters cell to one of the folders in `{root / env}`.")
    return None, (f"No finished run of **{env}** under `{root}`: make one with `workbook run --env {env}` (or "
                  f"`make run`), or set `run_folder` in the parameters cell to a run folder.")


def collect(run_folder: str | Path) -> dict[str, dict[str, Any]]:
    """The scraps of each detail notebook present in the run folder."""
    folder = Path(run_folder)
    found: dict[str, dict[str, Any]] = {}
    for name in DETAIL_NOTEBOOKS:
        path = folder / f"{name}.ipynb"
        if path.is_file():
            found[name] = record.read(path)
    return found


def build(scraps: dict[str, dict[str, Any]], min_confidence: float | None = None) -> Summary:
    """Turn the notebooks' scraps into the summary; ``min_confidence`` defaults to the tuning default (0.8)."""
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
    pipeline = scraps.get("02-metrics", {}).get("pipeline")
    if pipeline and pipeline.get("headline"):   # dataPipeline's executions (workbook.analysis.health.pipeline_headline)
        summary.headlines.append(pipeline["headline"])
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

    _tuning(summary, scraps.get("05-tuning"), min_confidence)
    advice = (scraps.get("05-tuning") or {}).get("compute_optimizer") or {}
    summary.compute_optimizer = pd.DataFrame(advice.get("beside") or [])
    summary.compute_optimizer_note = advice.get("note") or ""
    if summary.missing:
        summary.headlines.append(f"Not in this run: {', '.join(summary.missing)}.")
    return summary


TOP_COLUMNS = ["function", "kind", "current", "recommended", "confidence", "samples", "monthly_saving_usd", "floor",
               "reason"]
NEEDS_DATA_COLUMNS = ["function", "kind", "current", "status", "confidence", "samples", "needed", "reason"]


def _threshold(min_confidence: Any) -> tuple[float, str | None]:
    if min_confidence is None:
        return MIN_CONFIDENCE, None
    try:
        value = float(min_confidence)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        return float("inf"), (f"min_confidence={min_confidence!r} is outside 0..1: set it between 0 and 1 (default "
                              f"{MIN_CONFIDENCE}); no recommendation is promoted until then")
    return value, None


def _tuning(summary: Summary, tuning: dict[str, Any] | None, min_confidence: Any) -> None:
    """Top recommendations (recommend, confident), needs more data (the rest that is not keep), and a headline."""
    threshold, problem = _threshold(min_confidence)
    if problem:
        summary.problems.append(problem)
    recs = pd.DataFrame((tuning or {}).get("recommendations") or [])
    if recs.empty:
        if tuning is not None:
            summary.headlines.append("No tuning recommendation: the current settings hold.")
        return
    for column in ("status", "confidence", "monthly_saving_usd", "samples", "needed", "floor"):
        if column not in recs:
            recs[column] = None
    recs["confidence"] = pd.to_numeric(recs["confidence"], errors="coerce")
    recs["monthly_saving_usd"] = pd.to_numeric(recs["monthly_saving_usd"], errors="coerce")
    confident = (recs["status"] == "recommend") & (recs["confidence"] >= threshold)
    top = recs[confident].sort_values(["monthly_saving_usd", "confidence"], ascending=False, na_position="last")
    rest = recs[~confident & (recs["status"] != "keep")].copy()
    rest.loc[rest["status"] == "recommend", "needed"] = rest.loc[rest["status"] == "recommend", "confidence"].map(
        lambda c: f"confidence {c:.2f} is below min_confidence {threshold:g}: more invocations")
    summary.recommendations = top[[c for c in TOP_COLUMNS if c in top.columns]].reset_index(drop=True)
    summary.needs_data = rest[[c for c in NEEDS_DATA_COLUMNS if c in rest.columns]].reset_index(drop=True)
    kept = int((recs["status"] == "keep").sum())
    summary.headlines.append(
        f"{len(summary.recommendations)} change(s) recommended at confidence >= {threshold:g}; "
        f"{len(summary.needs_data)} need more data; {kept} setting(s) hold.")
    backtest = pd.DataFrame((tuning or {}).get("timeout_backtest") or [])
    if not backtest.empty and "cut" in backtest:
        cut = int(pd.to_numeric(backtest["cut"], errors="coerce").fillna(0).sum())
        summary.headlines.append(f"Timeout backtest (recommend from the first half of the window, replay the second): "
                                 f"{cut:,} invocation(s) would have been cut.")

"""Charts for the notebooks and the HTML runbooks (matplotlib; safe under the Agg backend).

Every function returns a ``matplotlib.figure.Figure`` with a title, units on its axes and
sizes legible in a runbook. Figures are created with ``Figure(...)`` directly (no pyplot
state), so they work headless and inside Papermill alike; a notebook displays a returned
figure as its cell's output.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from workbook.tuning.analysis import AnalysisResult

__all__ = [
    "power_tuning_curve",
    "cold_start_timeline",
    "init_distribution",
    "cost_by_function",
    "errors_and_throttles",
    "memory_headroom",
]

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.0, 110
TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 14, 12, 10
COST_COLOURS = {"requests_usd": "#4C72B0", "compute_usd": "#DD8452", "init_usd": "#C44E52",
                "ephemeral_usd": "#8172B3", "provisioned_usd": "#55A868", "snapstart_usd": "#937860"}


def _figure(rows: int = 1, cols: int = 1, height: float = HEIGHT_IN) -> tuple[Figure, Any]:
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols)
    return fig, axes


def _style(ax, title: str | None, xlabel: str, ylabel: str) -> None:
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, alpha=0.3)


def _no_data(ax, message: str = "no data in this range") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=LABEL_SIZE, transform=ax.transAxes, color="grey")


def power_tuning_curve(analysis: AnalysisResult | pd.DataFrame, *, recommended_mb: int | None = None,
                       title: str = "Power tuning: duration and cost by memory", predicted: pd.DataFrame | None = None) -> Figure:
    """Average duration (ms, left axis) and cost per invocation (USD, right axis) against memory.

    ``analysis`` is a ``tuning.AnalysisResult`` (its choice is marked) or its ``table``;
    ``predicted`` (from ``tuning.recommend_from_model``) adds the model curve with its band.
    """
    table = analysis.table if hasattr(analysis, "table") else analysis
    recommended_mb = recommended_mb if recommended_mb is not None else getattr(analysis, "memory_mb", None)
    fig, ax = _figure()
    _style(ax, title, "Memory (MB)", "Average duration (ms)")
    if table is None or len(table) == 0:
        _no_data(ax)
        return fig
    table = table.sort_values("memory_mb")
    x = table["memory_mb"].to_numpy()
    ax.plot(x, table["average_duration_ms"], marker="o", color="#4C72B0", label="duration (trimmed mean)")
    if "p95_duration_ms" in table:
        ax.plot(x, table["p95_duration_ms"], marker=".", linestyle=":", color="#4C72B0", alpha=0.6, label="duration p95")
    if predicted is not None and len(predicted):
        ax.plot(predicted["memory_mb"], predicted["predicted_duration_ms"], color="grey", linestyle="--", label="model")
        ax.fill_between(predicted["memory_mb"], predicted["low_ms"], predicted["high_ms"], color="grey", alpha=0.15)
    cost_ax = ax.twinx()
    cost_ax.plot(x, table["average_cost_usd"] * 1e6, marker="s", color="#DD8452", label="cost")
    cost_ax.set_ylabel("Cost per invocation (USD per million)", fontsize=LABEL_SIZE)
    cost_ax.tick_params(labelsize=TICK_SIZE)
    if recommended_mb is not None and recommended_mb in set(x):
        ax.axvline(recommended_mb, color="#55A868", linewidth=2, alpha=0.8)
        ax.annotate(f"recommended: {recommended_mb} MB", xy=(recommended_mb, 0.02), xycoords=("data", "axes fraction"),
                    xytext=(6, 0), textcoords="offset points", fontsize=LABEL_SIZE, color="#2E7D32",
                    bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "edgecolor": "#55A868"})
    ax.set_xscale("log", base=2)
    ax.set_xticks(x)
    ax.set_xticklabels([str(int(v)) for v in x])
    lines = ax.get_legend_handles_labels()
    more = cost_ax.get_legend_handles_labels()
    cost_ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=TICK_SIZE, loc="upper center", framealpha=0.9)
    return fig


def cold_start_timeline(timeline: pd.DataFrame, title: str = "Cold starts over time") -> Figure:
    """Cold starts per bucket for each function (from ``coldstart.timeline``), invocations shaded."""
    fig, ax = _figure()
    _style(ax, title, "Time (UTC)", "Cold starts per interval")
    if timeline is None or len(timeline) == 0:
        _no_data(ax)
        return fig
    for function, group in timeline.groupby("function", observed=True):
        ax.plot(group["timestamp"], group["cold_starts"], marker="o", markersize=3, label=str(function))
    ax.legend(fontsize=TICK_SIZE, ncol=3)
    fig.autofmt_xdate()
    return fig


def init_distribution(reports: pd.DataFrame, title: str = "INIT duration distribution") -> Figure:
    """Histogram of INIT durations (ms) of cold starts, per function, with p50/p99 marked."""
    fig, ax = _figure()
    _style(ax, title, "INIT duration (ms)", "Cold starts")
    cold = reports[reports["cold_start"].astype(bool)] if reports is not None and len(reports) else pd.DataFrame()
    if cold.empty:
        _no_data(ax, "no cold starts in this range")
        return fig
    values = cold["init_duration_ms"].astype(float)
    bins = np.histogram_bin_edges(values, bins=min(40, max(5, int(np.sqrt(len(values))))))
    for function, group in cold.groupby("function", observed=True):
        ax.hist(group["init_duration_ms"].astype(float), bins=bins, alpha=0.6, label=str(function))
    for q, style in ((0.5, "--"), (0.99, ":")):
        value = float(values.quantile(q))
        ax.axvline(value, color="black", linestyle=style, linewidth=1)
        ax.annotate(f"p{int(q * 100)} {value:.0f} ms", xy=(value, ax.get_ylim()[1] * 0.9), xytext=(4, 0),
                    textcoords="offset points", fontsize=TICK_SIZE)
    ax.legend(fontsize=TICK_SIZE)
    return fig


def cost_by_function(costs: pd.DataFrame, column_suffix: str = "_usd", title: str = "Cost per function by charge",
                     projection: bool = False) -> Figure:
    """Stacked bars of each function's cost by charge type (from ``cost.cost_from_reports``).

    ``projection`` scales each function's charges to its monthly projection.
    """
    fig, ax = _figure()
    _style(ax, title, "Function", "Cost (USD per month)" if projection else "Cost (USD)")
    if costs is None or len(costs) == 0:
        _no_data(ax)
        return fig
    charges = [c for c in COST_COLOURS if c in costs]
    frame = costs.set_index("function")[charges].astype(float)
    if projection and "monthly_projection_usd" in costs:
        totals = frame.sum(axis=1).replace(0, np.nan)
        factor = costs.set_index("function")["monthly_projection_usd"] / totals
        frame = frame.mul(factor.fillna(0), axis=0)
    bottom = np.zeros(len(frame))
    for charge in charges:
        ax.bar(frame.index.astype(str), frame[charge], bottom=bottom, color=COST_COLOURS[charge],
               label=charge.removesuffix(column_suffix).replace("_", " "))
        bottom += frame[charge].to_numpy()
    ax.legend(fontsize=TICK_SIZE)
    ax.tick_params(axis="x", labelrotation=20)
    return fig


def errors_and_throttles(metrics_frame: pd.DataFrame, title: str = "Errors and throttles over time") -> Figure:
    """Errors and Throttles (counts per period) per function, from ``metrics.load_metrics``."""
    fig, axes = _figure(2, 1, height=HEIGHT_IN * 1.4)
    for ax, metric in zip(axes, ("Errors", "Throttles"), strict=True):
        _style(ax, f"{title}: {metric}" if metric == "Errors" else metric, "Time (UTC)", f"{metric} per period")
        has_data = metrics_frame is not None and len(metrics_frame)
        data = metrics_frame[metrics_frame["metric"] == metric] if has_data else pd.DataFrame()
        if data.empty:
            _no_data(ax)
            continue
        for function, group in data.groupby("function", observed=True):
            ax.plot(group["timestamp"], group["value"], marker=".", label=str(function))
        ax.legend(fontsize=TICK_SIZE, ncol=3)
    return fig


def memory_headroom(reports: pd.DataFrame, title: str = "Memory headroom",
                    configured: Mapping[str, int] | None = None) -> Figure:
    """Max memory used (p50, p99, max) against memory configured, per function (MB).

    ``configured`` is each function's size from params (``{key: memory_mb}``): the bar the reader
    compares with. Without it, the size the rows ran at most often stands in (never the largest, which
    would be a power-tuning size had any tuning rows slipped in).
    """
    fig, ax = _figure()
    _style(ax, title, "Function", "Memory (MB)")
    if reports is None or len(reports) == 0:
        _no_data(ax)
        return fig
    stats = reports.groupby("function", observed=True).agg(
        configured=("memory_size_mb", lambda s: s.mode().iloc[0] if s.notna().any() else np.nan),
        p50=("max_memory_used_mb", lambda s: s.quantile(0.5)),
        p99=("max_memory_used_mb", lambda s: s.quantile(0.99)),
        peak=("max_memory_used_mb", "max"),
    )
    if configured:
        stats["configured"] = [configured.get(str(f), c) for f, c in zip(stats.index, stats["configured"], strict=True)]
    stats = stats.astype(float)
    x = np.arange(len(stats))
    ax.bar(x, stats["configured"], color="#DDDDDD", label="configured (params)" if configured else "configured")
    ax.bar(x, stats["peak"], width=0.5, color="#C44E52", alpha=0.5, label="max used (peak)")
    ax.bar(x, stats["p99"], width=0.35, color="#DD8452", label="max used p99")
    ax.bar(x, stats["p50"], width=0.2, color="#4C72B0", label="max used p50")
    for xi, (configured, peak) in enumerate(zip(stats["configured"], stats["peak"], strict=True)):
        ax.annotate(f"{100 * (1 - peak / configured):.0f}% free", xy=(xi, configured), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=TICK_SIZE)
    ax.set_xticks(x)
    ax.set_xticklabels([str(f) for f in stats.index], rotation=20)
    ax.legend(fontsize=TICK_SIZE)
    return fig

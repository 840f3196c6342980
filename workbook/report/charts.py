"""Charts for the notebooks and the HTML runbooks (matplotlib; safe under the Agg backend).

Every function returns a ``matplotlib.figure.Figure`` with a title, units on its axes and
sizes legible in a runbook. Figures are created with ``Figure(...)`` directly (no pyplot
state), so they work headless and inside Papermill alike; a notebook displays a returned
figure as its cell's output.

The axes tell the truth at any window:

- a time axis spans the report's window (``window=(start, end)``), or the data's own span, never
  matplotlib's default years around a single date;
- a series is drawn as points, joined only between samples one period apart: a gap (periods with no
  data) stays a gap, and a single sample is a point, not a line;
- durations, costs, memory and counts start at zero, and a count axis never zooms into 0.96–1.00;
- tick labels that would overlap are staggered onto a second row (or dropped), and function names
  wrap or turn until they fit: every label lies inside the figure.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter, NullLocator

from workbook.tuning.analysis import AnalysisResult

__all__ = [
    "power_tuning_curve",
    "cold_start_timeline",
    "init_distribution",
    "cost_by_function",
    "errors_and_throttles",
    "memory_headroom",
    "CHARTS",
]

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.0, 110
TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 14, 12, 10
LABEL_GAP_PX = 4          # the least space between two tick labels on one row
COST_COLOURS = {"requests_usd": "#4C72B0", "compute_usd": "#DD8452", "init_usd": "#C44E52",
                "ephemeral_usd": "#8172B3", "provisioned_usd": "#55A868", "snapstart_usd": "#937860"}
Window = tuple[Any, Any]   # (start, end): anything pandas reads as a timestamp; naive means UTC


def _figure(rows: int = 1, cols: int = 1, height: float = HEIGHT_IN, **kw: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, **kw)
    return fig, axes


def _style(ax, title: str | None, xlabel: str, ylabel: str) -> None:
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, alpha=0.3)


def _no_data(ax, message: str = "no data in this range", *, categories: bool = False) -> None:
    """Say so in the middle of the axes; ``categories``: no numbers on an x axis of names (or sizes)."""
    if categories:
        ax.set_xticks([])
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=LABEL_SIZE, transform=ax.transAxes, color="grey")


def _utc(values: Any) -> pd.Series:
    """Timestamps as tz-aware UTC (naive ones are taken as UTC)."""
    return pd.to_datetime(pd.Series(values), utc=True)


def _bounds(window: Window | None, stamps: pd.Series, period: pd.Timedelta | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The time axis: the report's window, else the data's span (a lone sample gets a period either side)."""
    if window is not None:
        start, end = (pd.Timestamp(t) for t in window)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
        if end <= start:
            raise ValueError(f"window ends ({end}) before it starts ({start}): pass (start, end)")
        return start, end
    pad = period if period is not None else pd.Timedelta(minutes=1)
    return stamps.min() - pad, stamps.max() + pad


def _time_axis(ax, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """Bound the axis to ``start``..``end``, with UTC date ticks that never crowd (concise labels)."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8, tz="UTC")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
    ax.set_xlim(mdates.date2num(start.tz_convert(None)), mdates.date2num(end.tz_convert(None)))


def _period(stamps: pd.Series, period_s: float | None) -> pd.Timedelta | None:
    """The sampling period: given, else the smallest step between distinct samples; None for one sample."""
    if period_s:
        return pd.Timedelta(seconds=period_s)
    steps = np.diff(np.unique(stamps.to_numpy(dtype="datetime64[ns]")))
    return pd.Timedelta(steps.min()) if len(steps) else None


def gapped_series(stamps: Any, values: Any, period: pd.Timedelta | None) -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib dates and values, sorted, with a NaN wherever the next sample is more than a period away.

    A line drawn from the result joins neighbouring periods only: a gap in the data stays a gap.
    """
    frame = pd.DataFrame({"t": _utc(stamps).to_numpy(), "v": pd.Series(values, dtype=float).to_numpy()})
    frame = frame.sort_values("t")
    times = frame["t"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    y = frame["v"].to_numpy(dtype=float)
    x = mdates.date2num(times)
    if period is None or len(x) < 2:
        return x, y
    limit = 1.5 * period.total_seconds() / 86400     # matplotlib dates count days
    breaks = np.nonzero(np.diff(x) > limit)[0] + 1
    return np.insert(x, breaks, np.nan), np.insert(y, breaks, np.nan)


def _per(period: pd.Timedelta | None) -> str:
    """" (1 min)" for the axis label of a count per period."""
    if period is None:
        return ""
    seconds = period.total_seconds()
    for unit, size in (("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f" ({seconds // size:.0f} {unit})"
    return f" ({seconds:g} s)"


def _count_axis(ax, top: float) -> None:
    """A count axis from zero, at least up to 1, with whole-number ticks."""
    ax.set_ylim(0, max(1.0, float(top) * 1.15 if np.isfinite(top) else 1.0))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _overlaps(a, b) -> bool:
    return a.x1 + LABEL_GAP_PX > b.x0 and b.x1 + LABEL_GAP_PX > a.x0


def _stagger_ticks(fig: Figure, ax, labels: Sequence[str], priority: Sequence[str] = ()) -> list[str]:
    """Set ``labels`` on ``ax``'s x ticks; a label that would overlap its neighbour moves to a second row.

    One that overlaps on both rows is dropped, unless it is in ``priority`` (the recommendation, say):
    then its neighbour goes instead. Returns the labels as set ('' where dropped).
    """
    shown = list(labels)
    ax.set_xticklabels(shown)
    fig.draw_without_rendering()
    ticks = ax.xaxis.get_major_ticks()[:len(shown)]
    boxes = [t.label1.get_window_extent() for t in ticks]
    second_row_pad = ticks[0].get_pad() + 1.2 * TICK_SIZE if ticks else 0   # points: one line lower
    last: list[int | None] = [None, None]          # the last label kept on each row
    for i in sorted(range(len(shown)), key=lambda i: boxes[i].x0):
        for row in (0, 1):
            if last[row] is None or not _overlaps(boxes[last[row]], boxes[i]):
                if row:
                    ticks[i].set_pad(second_row_pad)
                last[row] = i
                break
        else:
            kept = last[1]
            if labels[i] in priority and kept is not None and labels[kept] not in priority:
                shown[kept], last[1] = "", i
                ticks[i].set_pad(second_row_pad)
            else:
                shown[i] = ""
    ax.set_xticklabels(shown)
    return shown


def _fit_categories(fig: Figure, ax, names: Sequence[str]) -> None:
    """Function names on the x axis: level if they fit, wrapped at hyphens if not, else turned 30 degrees."""
    ax.set_xticks(np.arange(len(names)))
    for attempt in ("level", "wrapped", "turned"):
        labels = [n.replace("-", "-\n", 1) if attempt != "level" else n for n in names]
        ax.set_xticklabels(labels, rotation=30 if attempt == "turned" else 0,
                           ha="right" if attempt == "turned" else "center", rotation_mode="anchor")
        if attempt == "turned":
            return
        fig.draw_without_rendering()
        boxes = sorted((t.get_window_extent() for t in ax.get_xticklabels()), key=lambda b: b.x0)
        if not any(_overlaps(a, b) for a, b in zip(boxes, boxes[1:], strict=False)):
            return


def power_tuning_curve(analysis: AnalysisResult | pd.DataFrame, *, recommended_mb: int | None = None,
                       title: str = "Power tuning: duration and cost by memory", predicted: pd.DataFrame | None = None) -> Figure:
    """Average duration (ms, left axis) and cost per invocation (USD, right axis) against memory.

    ``analysis`` is a ``tuning.AnalysisResult`` (its choice is marked) or its ``table``;
    ``predicted`` (from ``tuning.recommend_from_model``) adds the model curve with its band (never below 0 ms).
    """
    table = analysis.table if hasattr(analysis, "table") else analysis
    recommended_mb = recommended_mb if recommended_mb is not None else getattr(analysis, "memory_mb", None)
    fig, ax = _figure()
    _style(ax, title, "Memory (MB)", "Average duration (ms)")
    if table is None or len(table) == 0:
        _no_data(ax, categories=True)
        ax.set_ylim(0, 1)
        return fig
    table = table.sort_values("memory_mb")
    x = table["memory_mb"].to_numpy(dtype=float)
    ax.plot(x, table["average_duration_ms"], marker="o", color="#4C72B0", label="duration (trimmed mean)")
    tops = [float(table["average_duration_ms"].max())]
    if "p95_duration_ms" in table:
        ax.plot(x, table["p95_duration_ms"], marker=".", linestyle=":", color="#4C72B0", alpha=0.6, label="duration p95")
        tops.append(float(table["p95_duration_ms"].max()))
    if predicted is not None and len(predicted):
        ax.plot(predicted["memory_mb"], predicted["predicted_duration_ms"], color="grey", linestyle="--", label="model")
        ax.fill_between(predicted["memory_mb"], predicted["low_ms"].clip(lower=0), predicted["high_ms"].clip(lower=0),
                        color="grey", alpha=0.15, label="model band")
        tops.append(float(predicted["high_ms"].max()))
    ax.set_xscale("log", base=2)
    ax.set_xlim(x.min() / 1.2, x.max() * 1.2)
    ax.set_ylim(0, _top(tops))
    cost_ax = ax.twinx()
    cost_per_million = table["average_cost_usd"].to_numpy(dtype=float) * 1e6
    cost_ax.plot(x, cost_per_million, marker="s", color="#DD8452", label="cost")
    cost_ax.set_ylabel("Cost per invocation (USD per million)", fontsize=LABEL_SIZE)
    cost_ax.tick_params(labelsize=TICK_SIZE)
    cost_ax.set_ylim(0, _top([float(np.nanmax(cost_per_million))]))
    if recommended_mb is not None and recommended_mb in set(x):
        ax.axvline(recommended_mb, color="#55A868", linewidth=2, alpha=0.8)
        right_half = np.log2(recommended_mb) > np.log2(x.min() * x.max()) / 2
        ax.annotate(f"recommended: {recommended_mb} MB", xy=(recommended_mb, 0.02), xycoords=("data", "axes fraction"),
                    xytext=(-6 if right_half else 6, 0), textcoords="offset points", fontsize=LABEL_SIZE,
                    ha="right" if right_half else "left", color="#2E7D32",
                    bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "edgecolor": "#55A868"})
    ax.set_xticks(x)
    ax.xaxis.set_minor_locator(NullLocator())       # log-scale minor ticks would add labels of their own
    ax.xaxis.set_minor_formatter(NullFormatter())
    lines = ax.get_legend_handles_labels()
    more = cost_ax.get_legend_handles_labels()
    fig.legend(lines[0] + more[0], lines[1] + more[1], fontsize=TICK_SIZE, loc="outside lower center", ncol=5)
    _stagger_ticks(fig, ax, [str(int(v)) for v in x], priority=[str(recommended_mb)])
    return fig


def _top(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    top = max(finite) if finite else 0.0
    return top * 1.1 if top > 0 else 1.0


def cold_start_timeline(timeline: pd.DataFrame, title: str = "Cold starts over time", *,
                        window: Window | None = None, period_s: float | None = None) -> Figure:
    """Cold starts per bucket for each function (from ``coldstart.timeline``) over ``window`` (UTC).

    Buckets one period apart are joined; a bucket without invocations is a gap, not a line through it.
    ``period_s`` is the bucket width (the ``freq`` given to ``coldstart.timeline``); inferred when None.
    """
    fig, ax = _figure()
    _style(ax, title, "Time (UTC)", "Cold starts per interval")
    empty = timeline is None or len(timeline) == 0
    stamps = pd.Series([], dtype="datetime64[ns, UTC]") if empty else _utc(timeline["timestamp"])
    period = None if empty else _period(stamps, period_s)
    if empty and window is None:
        _no_data(ax, categories=True)
        _count_axis(ax, 0)
        return fig
    _time_axis(ax, *_bounds(window, stamps, period))
    if empty:
        _no_data(ax)
        _count_axis(ax, 0)
        return fig
    for function, group in timeline.groupby("function", observed=True):
        t, y = gapped_series(group["timestamp"], group["cold_starts"], period)
        ax.plot(t, y, marker="o", markersize=4, label=str(function))
    _count_axis(ax, float(timeline["cold_starts"].max()))
    ax.set_ylabel(f"Cold starts per interval{_per(period)}", fontsize=LABEL_SIZE)
    ax.legend(fontsize=TICK_SIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # beside the data, never over it
    return fig


def init_distribution(reports: pd.DataFrame, title: str = "INIT duration distribution") -> Figure:
    """Histogram of INIT durations (ms) of cold starts, per function, with p50/p99 marked."""
    fig, ax = _figure()
    _style(ax, title, "INIT duration (ms)", "Cold starts")
    cold = reports[reports["cold_start"].astype(bool)] if reports is not None and len(reports) else pd.DataFrame()
    if cold.empty:
        _no_data(ax, "no cold starts in this range")
        _count_axis(ax, 0)
        ax.set_xlim(left=0)
        return fig
    values = cold["init_duration_ms"].astype(float)
    count = min(40, max(5, int(np.sqrt(len(values)))))
    centre, least_span = float(values.median()), max(10.0, 0.1 * float(values.median()))
    if float(values.max() - values.min()) < least_span:     # one value, or a few close ones: no false precision
        bins = np.linspace(max(0.0, centre - least_span / 2), max(0.0, centre - least_span / 2) + least_span, count + 1)
    else:
        bins = np.histogram_bin_edges(values, bins=count)
    heights = []
    for function, group in cold.groupby("function", observed=True):
        counts, _, _ = ax.hist(group["init_duration_ms"].astype(float), bins=bins, alpha=0.6, label=str(function))
        heights.append(float(np.max(counts)) if len(counts) else 0.0)
    _count_axis(ax, max(heights) * 1.25)     # room above the bars for the percentile labels
    low, high = ax.get_xlim()
    ax.set_xlim(max(0.0, low), high)
    mid = sum(ax.get_xlim()) / 2
    for row, (q, style) in enumerate(((0.5, "--"), (0.99, ":"))):
        value = float(values.quantile(q))
        ax.axvline(value, color="black", linestyle=style, linewidth=1)
        right = value > mid      # a label right of centre reads leftwards, so it stays inside the axes
        ax.annotate(f"p{int(q * 100)} {value:.0f} ms", xy=(value, 0.95 - 0.07 * row), xycoords=("data", "axes fraction"),
                    xytext=(-4 if right else 4, 0), textcoords="offset points", fontsize=TICK_SIZE,
                    ha="right" if right else "left", va="top")
    ax.legend(fontsize=TICK_SIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def cost_by_function(costs: pd.DataFrame, column_suffix: str = "_usd", title: str = "Cost per function by charge",
                     projection: bool = False) -> Figure:
    """Stacked bars of each function's cost by charge type (from ``cost.cost_from_reports``).

    ``projection`` scales each function's charges to its monthly projection.
    """
    fig, ax = _figure()
    _style(ax, title, "Function", "Cost (USD per month)" if projection else "Cost (USD)")
    if costs is None or len(costs) == 0:
        _no_data(ax, categories=True)
        ax.set_ylim(0, 1)
        return fig
    charges = [c for c in COST_COLOURS if c in costs]
    frame = costs.set_index("function")[charges].astype(float).clip(lower=0)
    if projection and "monthly_projection_usd" in costs:
        totals = frame.sum(axis=1).replace(0, np.nan)
        factor = costs.set_index("function")["monthly_projection_usd"] / totals
        frame = frame.mul(factor.fillna(0), axis=0)
    x = np.arange(len(frame))
    bottom = np.zeros(len(frame))
    for charge in charges:
        ax.bar(x, frame[charge], bottom=bottom, color=COST_COLOURS[charge],
               label=charge.removesuffix(column_suffix).replace("_", " "))
        bottom += frame[charge].to_numpy()
    total = float(bottom.max()) if len(bottom) else 0.0
    if total <= 0:
        _no_data(ax, "no charges in this range (no invocations)")
    ax.set_ylim(0, total * 1.15 if total > 0 else 1.0)
    ax.legend(fontsize=TICK_SIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _fit_categories(fig, ax, [str(f) for f in frame.index])
    return fig


def errors_and_throttles(metrics_frame: pd.DataFrame, title: str = "Errors and throttles over time", *,
                         window: Window | None = None, period_s: float | None = None) -> Figure:
    """Errors and Throttles (counts per period) per function over ``window`` (UTC), from ``metrics.load_metrics``.

    Periods one apart are joined; a period without data stays a gap, and a lone sample is a point.
    """
    fig, axes = _figure(2, 1, height=HEIGHT_IN * 1.4, sharex=True)
    has_data = metrics_frame is not None and len(metrics_frame)
    stamps = _utc(metrics_frame["timestamp"]) if has_data else pd.Series([], dtype="datetime64[ns, UTC]")
    period = _period(stamps, period_s) if has_data else None
    bounds = _bounds(window, stamps, period) if (window is not None or has_data) else None
    functions = sorted(metrics_frame["function"].astype(str).unique()) if has_data else []
    colours = {f: f"C{i % 10}" for i, f in enumerate(functions)}
    for ax, metric in zip(axes, ("Errors", "Throttles"), strict=True):
        _style(ax, f"{title}: {metric}" if metric == "Errors" else metric,
               "Time (UTC)" if metric == "Throttles" else "", f"{metric} per period")
        data = metrics_frame[metrics_frame["metric"] == metric] if has_data else pd.DataFrame()
        if bounds is not None:
            _time_axis(ax, *bounds)
        if data.empty:
            _no_data(ax, categories=bounds is None)
            _count_axis(ax, 0)
            continue
        ax.set_ylabel(f"{metric} per period{_per(period)}", fontsize=LABEL_SIZE)
        for function, group in data.groupby("function", observed=True):
            t, y = gapped_series(group["timestamp"], group["value"], period)
            ax.plot(t, y, marker="o", markersize=4, label=str(function), color=colours[str(function)])
        _count_axis(ax, float(data["value"].max()))
    if has_data:     # one legend for both panels, beside them (never over the data)
        handles = [Line2D([], [], marker="o", markersize=4, color=c, label=f) for f, c in colours.items()]
        fig.legend(handles=handles, fontsize=TICK_SIZE, loc="outside right upper")
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
        _no_data(ax, categories=True)
        ax.set_ylim(0, 1)
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
    for xi, (size_mb, peak) in enumerate(zip(stats["configured"], stats["peak"], strict=True)):
        ax.annotate(f"{100 * (1 - peak / size_mb):.0f}% free", xy=(xi, size_mb), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=TICK_SIZE)
    top = float(np.nanmax(stats[["configured", "peak"]].to_numpy())) if len(stats) else 0.0
    ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)     # room for the "% free" labels and the legend
    ax.set_xlim(-0.6, len(stats) - 0.4)
    ax.legend(fontsize=TICK_SIZE, loc="upper right", ncol=2)
    _fit_categories(fig, ax, [str(f) for f in stats.index])
    return fig


# Every chart function, by name: the chart tests render each one with edge-case data.
CHARTS = {f.__name__: f for f in (power_tuning_curve, cold_start_timeline, init_distribution, cost_by_function,
                                  errors_and_throttles, memory_headroom)}

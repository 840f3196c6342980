"""workbook.report.charts at the edges: every chart function, drawn by matplotlib's own renderer, keeps its axes honest.

Each case renders a chart with edge-case data (one sample, zero invocations, one function, a
five-minute window, all six functions, the sizes 1769 and 2048 together) on the Agg canvas, then
measures the drawn figure: every text lies inside the figure, no two tick labels of an axis overlap
(their bounding boxes from the renderer), time axes span exactly the report's window, and value axes
(durations, costs, memory, counts) start at zero. ``render_all`` writes the same figures as PNG for a
person to look at: ``python tests/unit/report/test_chart_edges.py /tmp/charts``.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.text import Text

from infra.specs import FUNCTION_KEYS
from workbook import tuning
from workbook.analysis import coldstart, cost
from workbook.report import charts

END = pd.Timestamp("2026-12-07T21:00:00Z")
HOUR = (END - pd.Timedelta(hours=1), END)
FIVE_MINUTES = (END - pd.Timedelta(minutes=5), END)


def _reports(functions=("api-processor",), n=1, start=END - pd.Timedelta(minutes=30), step=pd.Timedelta(minutes=1),
             memory_mb=512, cold_every=1):
    rows = []
    for f in functions:
        for i in range(n):
            cold = i % cold_every == 0
            rows.append({"request_id": f"{f}-{i}", "function": f, "timestamp": start + i * step,
                         "duration_ms": 20.0 + i % 7, "billed_duration_ms": 21 + i % 7, "memory_size_mb": memory_mb,
                         "max_memory_used_mb": 80 + i % 11, "init_duration_ms": 250.0 + 3 * (i % 5) if cold else np.nan,
                         "cold_start": cold, "status": "ok"})
    columns = ["request_id", "function", "timestamp", "duration_ms", "billed_duration_ms", "memory_size_mb",
               "max_memory_used_mb", "init_duration_ms", "cold_start", "status"]
    return pd.DataFrame(rows, columns=columns)


def _metrics(stamps, functions=("api-processor",), value=1.0):
    rows = [{"function": f, "metric": m, "stat": "Sum", "timestamp": t, "value": value, "source": "cloudwatch"}
            for f in functions for m in ("Errors", "Throttles") for t in stamps]
    return pd.DataFrame(rows, columns=["function", "metric", "stat", "timestamp", "value", "source"])


def _power(sizes):
    durations = {m: [max(8.0, 50_000 / m) + k for k in range(5)] for m in sizes}
    analysis = tuning.analyze(durations, strategy="speed")
    model = tuning.recommend_from_model(durations, list(sizes), bootstrap=5) if len(sizes) > 1 else None
    return analysis, model


@dataclass
class Case:
    """One chart with edge-case data, and what its axes must show."""

    id: str
    make: Callable[[], Figure]
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None      # the time axis must span exactly this
    single_points: bool = False      # every series is one sample: drawn as a point, no line
    gap: bool = False                # samples with a gap between them: the line breaks there
    labels: tuple[str, ...] = field(default_factory=tuple)        # tick labels that must be drawn


_SIX = tuple(FUNCTION_KEYS)
_GAPPED = [END - pd.Timedelta(minutes=m) for m in (50, 49, 48, 20, 19)]


def _cases() -> list[Case]:
    power_close, model_close = _power([128, 256, 512, 1024, 1536, 1769, 2048, 3008, 10240])
    power_crowded, _ = _power([128, 1024, 1536, 1769, 1792, 2048, 2304, 3008])
    power_one, _ = _power([1769])
    one = _reports()
    six = _reports(_SIX, n=40, cold_every=9)
    return [
        # Time series: one sample in an hour, a gap, a five-minute window, nothing at all
        Case("errors-one-sample-hour", lambda: charts.errors_and_throttles(_metrics([END - pd.Timedelta(minutes=10)]),
                                                                           window=HOUR, period_s=60),
             window=HOUR, single_points=True),
        Case("errors-gap-six-functions", lambda: charts.errors_and_throttles(_metrics(_GAPPED, _SIX, 3.0), window=HOUR,
                                                                             period_s=60), window=HOUR, gap=True),
        Case("errors-five-minutes", lambda: charts.errors_and_throttles(
            _metrics([FIVE_MINUTES[0] + pd.Timedelta(minutes=m) for m in range(5)]), window=FIVE_MINUTES),
             window=FIVE_MINUTES),
        Case("errors-zero-invocations", lambda: charts.errors_and_throttles(_metrics([]), window=HOUR), window=HOUR),
        Case("errors-no-window-one-sample", lambda: charts.errors_and_throttles(_metrics([END])), single_points=True),
        Case("errors-nothing-at-all", lambda: charts.errors_and_throttles(pd.DataFrame())),
        Case("timeline-one-sample-hour", lambda: charts.cold_start_timeline(coldstart.timeline(one, "1min"),
                                                                            window=HOUR, period_s=60),
             window=HOUR, single_points=True),
        Case("timeline-gap", lambda: charts.cold_start_timeline(coldstart.timeline(pd.concat(
            [_reports(start=t, n=1).assign(request_id=f"r{i}") for i, t in enumerate(_GAPPED)]), "1min"), window=HOUR),
             window=HOUR, gap=True),
        Case("timeline-five-minutes-six", lambda: charts.cold_start_timeline(coldstart.timeline(
            _reports(_SIX, n=5, start=FIVE_MINUTES[0]), "1min"), window=FIVE_MINUTES, period_s=60), window=FIVE_MINUTES),
        Case("timeline-nothing-at-all", lambda: charts.cold_start_timeline(pd.DataFrame())),
        Case("timeline-zero-invocations", lambda: charts.cold_start_timeline(coldstart.timeline(_reports(n=0), "1min"),
                                                                             window=HOUR), window=HOUR),
        # Distributions and bars
        Case("init-one-sample", lambda: charts.init_distribution(one)),
        Case("init-six-functions", lambda: charts.init_distribution(six)),
        Case("init-zero-invocations", lambda: charts.init_distribution(_reports(n=0))),
        Case("cost-one-function", lambda: charts.cost_by_function(cost.cost_from_reports(one), projection=True)),
        Case("cost-six-functions", lambda: charts.cost_by_function(cost.cost_from_reports(six), projection=True),
             labels=_SIX),
        Case("cost-zero-invocations", lambda: charts.cost_by_function(cost.cost_from_reports(_reports(n=0)))),
        Case("headroom-one-sample", lambda: charts.memory_headroom(one)),
        Case("headroom-six-functions", lambda: charts.memory_headroom(
            six.assign(memory_size_mb=[1769, 2048, 128, 10240, 512, 3008][0]), configured=dict.fromkeys(_SIX, 2048)),
             labels=_SIX),
        Case("headroom-zero-invocations", lambda: charts.memory_headroom(_reports(n=0))),
        # Power tuning: close sizes, a crowd of them, a single one, nothing
        Case("power-1769-and-2048", lambda: charts.power_tuning_curve(power_close, predicted=model_close.predicted),
             labels=("1769", "2048")),
        Case("power-crowded", lambda: charts.power_tuning_curve(power_crowded)),
        Case("power-one-size", lambda: charts.power_tuning_curve(power_one), labels=("1769",)),
        Case("power-zero-invocations", lambda: charts.power_tuning_curve(pd.DataFrame())),
    ]


CASES = _cases()


def test_every_chart_function_has_edge_cases():
    # GIVEN the chart functions the notebooks use, THEN each one is exercised here
    covered = {name for name in charts.CHARTS if any(c.id.startswith(_PREFIX[name]) for c in CASES)}
    assert covered == set(charts.CHARTS)


_PREFIX = {"power_tuning_curve": "power", "cold_start_timeline": "timeline", "init_distribution": "init",
           "cost_by_function": "cost", "errors_and_throttles": "errors", "memory_headroom": "headroom"}


def _draw(fig: Figure):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _in_view(axis, limits) -> list[Text]:
    """The tick labels the renderer drew: visible, non-empty, and at a tick inside the axis's view."""
    low, high = sorted(limits)
    span = high - low
    out = []
    for tick in axis.get_major_ticks():
        label = tick.label1
        position = tick.get_loc()
        if label.get_visible() and label.get_text().strip() and low - 1e-9 * span <= position <= high + 1e-9 * span:
            out.append(label)
    return out


def _tick_labels(fig: Figure) -> list[tuple[str, list[Text]]]:
    labels = []
    for i, ax in enumerate(fig.axes):
        labels.append((f"axes {i} x", _in_view(ax.xaxis, ax.get_xlim())))
        labels.append((f"axes {i} y", _in_view(ax.yaxis, ax.get_ylim())))
    return labels


def _texts(fig: Figure) -> list[Text]:
    """Every text drawn: titles, axis labels, legends, annotations, offsets, and the tick labels in view."""
    tick_texts = {id(t.label1) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                  for t in axis.get_major_ticks() + axis.get_minor_ticks()}
    tick_texts |= {id(t.label2) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                   for t in axis.get_major_ticks() + axis.get_minor_ticks()}
    others = [t for t in fig.findobj(Text) if id(t) not in tick_texts and t.get_visible() and t.get_text().strip()]
    return others + [t for _, labels in _tick_labels(fig) for t in labels]


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_chart_edges(case):
    # GIVEN a chart drawn from edge-case data by the Agg renderer
    fig = case.make()
    renderer = _draw(fig)
    width, height = fig.bbox.width, fig.bbox.height

    # THEN every text lies inside the figure
    for text in _texts(fig):
        box = text.get_window_extent(renderer)
        assert box.x0 >= -0.5 and box.y0 >= -0.5 and box.x1 <= width + 0.5 and box.y1 <= height + 0.5, \
            f"{case.id}: {text.get_text()!r} at {box} is outside the {width:.0f}x{height:.0f} figure"

    # AND no two tick labels of one axis overlap
    for where, labels in _tick_labels(fig):
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
        for i, (text_a, a) in enumerate(boxes):
            for text_b, b in boxes[i + 1:]:
                assert not _overlap(a, b), f"{case.id}, {where}: tick labels {text_a!r} and {text_b!r} overlap"
    drawn = {t.get_text().strip() for _, labels in _tick_labels(fig) for t in labels}
    for label in case.labels:
        assert any(label == d.replace("\n", "") or label == d.replace("-\n", "-") for d in drawn), \
            f"{case.id}: tick label {label!r} is not drawn ({sorted(drawn)})"

    # AND value axes start at zero, and none of the shaded bands goes below it
    for ax in fig.axes:
        assert ax.get_ylim()[0] == 0, f"{case.id}: {ax.get_ylabel()!r} starts at {ax.get_ylim()[0]}"
        for band in (c for c in ax.collections if isinstance(c, PolyCollection)):
            for path in band.get_paths():
                assert path.vertices[:, 1].min() >= 0, f"{case.id}: a band goes below zero"
        if "Memory" not in ax.get_xlabel() and ax.get_xscale() == "linear" and "(ms)" in ax.get_xlabel():
            assert ax.get_xlim()[0] >= 0, f"{case.id}: the duration axis starts below zero"
        if "per period" in ax.get_ylabel() or "per interval" in ax.get_ylabel():
            assert ax.get_ylim()[1] >= 1, f"{case.id}: a count axis zooms below one ({ax.get_ylim()})"

    # AND a time axis spans the report's window, or a few periods around the data (never years)
    for ax in fig.axes:
        if "Time" not in ax.get_xlabel() and not (ax.get_shared_x_axes().get_siblings(ax) != [ax]
                                                   and any("Time" in a.get_xlabel() for a in fig.axes)):
            continue
        if not len(ax.get_xticks()):     # nothing at all and no window: no time axis is drawn
            assert any("no " in t.get_text() for t in ax.texts), f"{case.id}: an empty axis that does not say why"
            continue
        low, high = ax.get_xlim()
        if case.window is not None:
            expected = [mdates.date2num(t.tz_convert(None)) for t in case.window]
            assert (low, high) == pytest.approx(expected, abs=1e-9), f"{case.id}: x axis {low}..{high}"
        else:
            assert high - low <= 1 / 24, f"{case.id}: x axis spans {high - low:.2f} days for one sample"

    # AND a lone sample is a point; a gap in the data is a gap in the line
    series = [line for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata()) and line.get_marker() != "None"]
    if case.single_points:
        assert series
        for line in series:
            assert np.isfinite(np.asarray(line.get_ydata(), dtype=float)).sum() == 1
            assert line.get_marker() not in (None, "", " ", "None")
    if case.gap:
        for line in series:
            y = np.asarray(line.get_ydata(), dtype=float)
            assert np.isnan(y).sum() == 1, f"{case.id}: the line bridges its gap ({y})"


def test_gapped_series_breaks_only_at_gaps():
    # GIVEN samples at minutes 0, 1, 2, then 10 (a gap), at a one-minute period
    stamps = [END + pd.Timedelta(minutes=m) for m in (2, 0, 1, 10)]
    # WHEN prepared for a line
    x, y = charts.gapped_series(stamps, [3, 1, 2, 4], pd.Timedelta(minutes=1))
    # THEN they are sorted and one NaN separates the gap, so the line stops at minute 2
    assert list(np.isnan(y)) == [False, False, False, True, False]
    assert list(y[~np.isnan(y)]) == [1, 2, 3, 4]
    assert np.all(np.diff(x[~np.isnan(x)]) > 0)
    # AND without a period (one sample) nothing is inserted
    assert len(charts.gapped_series(stamps[:1], [1], None)[0]) == 1


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="pass \\(start, end\\)"):
        charts.cold_start_timeline(pd.DataFrame(), window=(END, END - pd.Timedelta(hours=1)))


def render_all(folder: Path) -> list[Path]:
    """Every case as a PNG at the runbook's size, for a person to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for case in CASES:
        fig = case.make()
        FigureCanvasAgg(fig).print_png(str(folder / f"{case.id}.png"))
        written.append(folder / f"{case.id}.png")
    return written


if __name__ == "__main__":
    print("\n".join(str(p) for p in render_all(Path(sys.argv[1] if len(sys.argv) > 1 else "charts"))))

"""workbook.report.charts: every chart renders headless, with a title and units, from data and from nothing."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from workbook import tuning
from workbook.analysis import coldstart, cost
from workbook.report import charts


def _reports():
    t0 = pd.Timestamp("2025-11-01T10:00:00Z")
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({
        "request_id": [f"r{i}" for i in range(n)],
        "function": ["api" if i % 2 else "worker" for i in range(n)],
        "timestamp": [t0 + pd.Timedelta(minutes=i) for i in range(n)],
        "duration_ms": rng.uniform(10, 100, n),
        "billed_duration_ms": rng.integers(10, 100, n),
        "memory_size_mb": [512] * n,
        "max_memory_used_mb": rng.integers(60, 200, n),
        "init_duration_ms": [300.0 if i % 10 == 0 else np.nan for i in range(n)],
        "cold_start": [i % 10 == 0 for i in range(n)],
        "status": ["ok"] * n,
    })


def _metrics_frame():
    t0 = pd.Timestamp("2025-11-01T10:00:00Z")
    rows = [{"function": f, "metric": m, "stat": "Sum", "timestamp": t0 + pd.Timedelta(minutes=i), "value": float(i % 3),
             "source": "cloudwatch"} for f in ("api", "worker") for m in ("Errors", "Throttles") for i in range(30)]
    return pd.DataFrame(rows)


def _texts(fig: Figure) -> str:
    parts = []
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return " | ".join(parts)


def _render(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _cases():
    reports = _reports()
    analysis = tuning.analyze({128: [400] * 5, 256: [190] * 5, 512: [100] * 5, 1024: [52] * 5})
    model = tuning.recommend_from_model({128: [400] * 5, 512: [100] * 5, 1024: [52] * 5}, [128, 256, 512, 1024], bootstrap=5)
    return [
        ("power", lambda: charts.power_tuning_curve(analysis, predicted=model.predicted), ("Memory (MB)", "(ms)", "USD")),
        ("timeline", lambda: charts.cold_start_timeline(coldstart.timeline(reports, "30min")), ("Time (UTC)", "Cold starts")),
        ("init", lambda: charts.init_distribution(reports), ("INIT duration (ms)",)),
        ("cost", lambda: charts.cost_by_function(cost.cost_from_reports(reports), projection=True), ("USD per month",)),
        ("errors", lambda: charts.errors_and_throttles(_metrics_frame()), ("Errors per period", "Throttles per period")),
        ("headroom", lambda: charts.memory_headroom(reports), ("Memory (MB)",)),
    ]


@pytest.mark.parametrize("name, make, units", _cases(), ids=[c[0] for c in _cases()])
def test_chart_renders_with_title_and_units(name, make, units):
    fig = make()
    assert isinstance(fig, Figure)
    text = _texts(fig)
    assert fig.axes[0].get_title()
    for unit in units:
        assert unit in text, (unit, text)
    assert fig.get_size_inches()[0] >= 8
    assert _render(fig)[:4] == b"\x89PNG"


@pytest.mark.parametrize("make", [
    lambda: charts.power_tuning_curve(pd.DataFrame()),
    lambda: charts.cold_start_timeline(pd.DataFrame()),
    lambda: charts.init_distribution(pd.DataFrame()),
    lambda: charts.cost_by_function(pd.DataFrame()),
    lambda: charts.errors_and_throttles(pd.DataFrame()),
    lambda: charts.memory_headroom(pd.DataFrame()),
])
def test_charts_without_data_say_so(make):
    fig = make()
    assert any("no " in t.get_text() for ax in fig.axes for t in ax.texts)
    _render(fig)


def test_memory_headroom_labels_the_configured_size_from_params():
    # GIVEN the file processor's rows: its traffic at 2,048 MB and a few power-tuning rows at 3,008 MB
    reports = _reports().assign(function="file-processor", memory_size_mb=[2048] * 190 + [3008] * 10)
    # WHEN charted with the size params configure, and without it
    with_params = charts.memory_headroom(reports, configured={"file-processor": 2048})
    alone = charts.memory_headroom(reports)
    # THEN the configured bar is 2,048 MB either way (never the largest tuning size), labelled from params
    for fig in (with_params, alone):
        configured_bar = fig.axes[0].containers[0].patches[0]
        assert configured_bar.get_height() == 2048
    assert "configured (params)" in [t.get_text() for t in with_params.axes[0].get_legend().get_texts()]

"""Recommendations per function, the params patch they make, and the interactive projection."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from infra import config
from workbook import tuning
from workbook.report import interactive
from workbook.tuning import recommend


def reports(key: str, n: int, duration_ms: float, memory_mb: int, used_mb: float) -> pd.DataFrame:
    start = pd.Timestamp("2026-11-27T00:00:00Z")
    return pd.DataFrame({
        "function": key,
        "timestamp": [start + pd.Timedelta(seconds=30 * i) for i in range(n)],
        "duration_ms": np.full(n, duration_ms),
        "billed_duration_ms": np.full(n, np.ceil(duration_ms)),
        "memory_size_mb": memory_mb,
        "max_memory_used_mb": np.full(n, used_mb),
        "init_duration_ms": np.nan,
        "cold_start": False,
    })


@pytest.fixture
def settings():
    return config.load("local")


def tuned_at(choice: int, durations: dict[int, float]) -> recommend.Tuned:
    by_memory = {m: [d] * 10 for m, d in durations.items()}
    analysis = tuning.analyze(by_memory, "cost")
    run = SimpleNamespace(memory_mb=choice, analysis=analysis, invocations=pd.DataFrame(), confidence=0.9,
                          invocations_used=40)
    return recommend.Tuned("file-processor", run, None)


def test_no_data_gives_no_change(settings):
    recs = recommend.recommend(settings, reports("api-processor", 0, 1, 512, 1), ["api-processor"])
    assert recs.empty and "no invocations" in recs.table.iloc[0]["reason"]


def test_usage_floor_raises_memory_when_too_tight(settings):
    data = reports("notification-handler", 200, 20, 256, 250)
    recs = recommend.recommend(settings, data, ["notification-handler"])
    assert recs.functions["notification-handler"]["memory_mb"] > 256


def test_thin_data_keeps_the_timeout(settings):
    data = reports("api-processor", 50, 100, 512, 60)
    recs = recommend.recommend(settings, data, ["api-processor"])
    row = recs.table[(recs.table["kind"] == "timeout")].iloc[0]
    assert row["recommended"] == "30 s" and "at least 100" in row["reason"]
    assert "timeout_s" not in recs.functions.get("api-processor", {})


def test_enough_data_tightens_the_timeout_and_keeps_visibility_6x(settings):
    data = reports("data-processor", 500, 200, 1024, 100)
    recs = recommend.recommend(settings, data, ["data-processor"])
    timeout = recs.functions["data-processor"]["timeout_s"]
    assert timeout < 300
    visibility = recs.queues.get("task_queue", {}).get("visibility_timeout_s", settings.params.task_queue.visibility_timeout_s)
    assert visibility >= 6 * timeout


def test_tuned_choice_with_saving_and_patch(settings, tmp_path):
    data = reports("file-processor", 300, 400, 2048, 90)
    tuned = tuned_at(512, {512: 700.0, 1024: 380.0, 2048: 360.0})
    recs = recommend.recommend(settings, data, ["file-processor"], {"file-processor": tuned})
    memory = recs.table[recs.table["kind"] == "memory"].iloc[0]
    assert memory["recommended"] == "512" and memory["monthly_saving_usd"] > 0 and memory["confidence"] == 0.9
    import shutil

    for env in config.ENVIRONMENTS:
        shutil.copy(config.PARAMS_DIR / f"{env}.yaml", tmp_path / f"{env}.yaml")
    patch = recs.patch("local", params_dir=tmp_path)
    assert "memory_mb: 512" in patch.diff
    assert (tmp_path / "local.yaml").read_text() == patch.before    # nothing written until apply()


def test_tuned_choice_never_below_the_usage_floor(settings):
    data = reports("file-processor", 300, 400, 2048, 600)   # peaks at 600 MB
    tuned = tuned_at(256, {256: 1500.0, 512: 800.0})
    recs = recommend.recommend(settings, data, ["file-processor"], {"file-processor": tuned})
    assert recs.functions["file-processor"]["memory_mb"] >= 600 * 1.3


def test_projection_uses_cpu_share_without_a_model(settings):
    data = reports("api-processor", 120, 100, 512, 300)
    at_1024 = interactive.project(settings, "api-processor", 1024, 30, "x86_64", data)
    at_256 = interactive.project(settings, "api-processor", 256, 30, "x86_64", data)
    assert at_1024["duration_ms"] == pytest.approx(50, rel=0.01)
    assert at_256["memory_risk"] == "out of memory likely"
    assert at_1024["monthly_usd"] > 0


def test_projection_without_data(settings):
    empty = reports("api-processor", 0, 1, 512, 1)
    assert interactive.project(settings, "api-processor", 512, 30, "x86_64", empty)["basis"] == "no data"


def test_static_controls_print_the_recommendation(settings, capsys):
    data = reports("api-processor", 120, 100, 512, 200)
    recs = recommend.recommend(settings, data, ["api-processor"])
    assert interactive.controls(settings, {}, data, recs, interactive=False) is None
    assert "api-processor" in capsys.readouterr().out


def test_monthly_figures_follow_the_analysed_window(settings):
    data = reports("api-processor", 120, 100, 512, 300)            # 120 invocations within one hour
    per_span = interactive.project(settings, "api-processor", 512, 30, "x86_64", data)
    per_day = interactive.project(settings, "api-processor", 512, 30, "x86_64", data, window_hours=24)
    assert per_day["monthly_usd"] < per_span["monthly_usd"]

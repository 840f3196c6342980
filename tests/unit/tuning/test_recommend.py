"""Recommendations per function: statuses, floors, the confidence threshold, the params patch and the projection."""
from __future__ import annotations

import math
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from infra import config
from workbook import tuning
from workbook.report import interactive
from workbook.tuning import bounds, floors, recommend
from workbook.tuning.decide import Status

COLUMNS = {"function", "kind", "current", "recommended", "status", "confidence", "samples", "floor", "reason"}


def reports(key: str, n: int, duration_ms: float | np.ndarray, memory_mb: int, used_mb: float,
            status: str = "ok") -> pd.DataFrame:
    start = pd.Timestamp("2026-11-27T00:00:00Z")
    durations = np.full(n, duration_ms) if np.isscalar(duration_ms) else np.asarray(duration_ms, float)
    return pd.DataFrame({
        "function": key,
        "timestamp": [start + pd.Timedelta(seconds=i) for i in range(n)],
        "duration_ms": durations,
        "billed_duration_ms": np.ceil(durations),
        "memory_size_mb": memory_mb,
        "max_memory_used_mb": np.full(n, used_mb),
        "init_duration_ms": np.nan,
        "cold_start": False,
        "status": status,
    })


@pytest.fixture
def settings():
    return config.load("local")


def row(recs, key, kind):
    return recs.table.set_index(["function", "kind"]).loc[(key, kind)]


def tuned_run(durations_by_memory: dict[int, list[float]], current_weight: int = 10, used_mb: float = 60.0,
              errors: dict[int, str] | None = None) -> recommend.Tuned:
    """A measured tuning run: warm invocations with the given durations at each size."""
    records = []
    for memory, durations in durations_by_memory.items():
        for d in durations:
            records.append({"memory_mb": memory, "duration_ms": d, "billed_duration_ms": math.ceil(d),
                            "init_duration_ms": None, "max_memory_used_mb": used_mb,
                            "error": (errors or {}).get(memory)})
    frame = pd.DataFrame.from_records(records)
    ok = frame[frame["error"].isna()]
    analysis = tuning.analyze({m: list(g["billed_duration_ms"]) for m, g in ok.groupby("memory_mb")}, "cost")
    run = SimpleNamespace(memory_mb=analysis.memory_mb, analysis=analysis, invocations=frame, confidence=0.9,
                          invocations_used=len(frame))
    return recommend.Tuned("file-processor", run, None)


def test_every_row_carries_status_confidence_samples_floor_and_reason(settings):
    data = pd.concat([reports("api-processor", 600, 80, 512, 90), reports("auth-handler", 4000, 5, 256, 60)])
    recs = recommend.recommend(settings, data, ["api-processor", "auth-handler"])
    assert COLUMNS <= set(recs.table.columns)
    assert set(recs.table["status"]) <= {"recommend", "keep", "insufficient-data"}
    assert (recs.table["reason"].str.len() > 0).all()


def test_a_function_never_invoked_gets_insufficient_data_rows_and_no_change(settings):
    # GIVEN no REPORT row for the function WHEN recommending
    recs = recommend.recommend(settings, reports("api-processor", 0, 1, 512, 1), ["api-processor"])
    # THEN every kind says insufficient-data with what to collect, and nothing reaches the patch
    assert recs.empty and set(recs.table["status"]) == {"insufficient-data"}
    assert all("never invoked" in r for r in recs.table["reason"]) and all(recs.table["needed"].str.len() > 0)


def test_one_invocation_is_insufficient_data_for_the_timeout(settings):
    recs = recommend.recommend(settings, reports("data-processor", 1, 120, 1024, 80), ["data-processor"])
    timeout = row(recs, "data-processor", "timeout")
    assert timeout["status"] == "insufficient-data" and timeout["recommended"] == "300 s"
    assert "2,994 more invocations" in timeout["needed"] and timeout["samples"] == 1


def test_all_errors_is_insufficient_data_and_says_why(settings):
    data = reports("api-processor", 500, 40, 512, 80, status="error")
    recs = recommend.recommend(settings, data, ["api-processor"])
    timeout = row(recs, "api-processor", "timeout")
    assert timeout["status"] == "insufficient-data" and "all 500 invocations in the window failed" in timeout["reason"]
    assert "timeout_s" not in recs.functions.get("api-processor", {})


def test_thin_data_never_recommends_a_timeout_and_says_how_many_more(settings):
    # GIVEN the case: 556 fast invocations behind the HTTP API
    rng = np.random.default_rng(3)
    data = reports("api-processor", 556, rng.lognormal(math.log(80), 0.6, 556), 512, 90)
    recs = recommend.recommend(settings, data, ["api-processor"])
    timeout = row(recs, "api-processor", "timeout")
    # THEN no recommendation from fewer samples than the rule needs, and the reason names the shortfall
    assert timeout["status"] == "insufficient-data" and timeout["recommended"] == "30 s"
    assert f"{bounds.min_samples() - 556:,} more" in timeout["needed"]
    assert "provisional only" in timeout["reason"]


def test_enough_data_recommends_down_to_the_floor_never_below_it(settings):
    # GIVEN 5,000 short invocations of the data processor (PostgreSQL, SNS and the secret through the SDK)
    data = reports("data-processor", 5000, np.linspace(50, 400, 5000), 1024, 70)
    recs = recommend.recommend(settings, data, ["data-processor"])
    timeout = row(recs, "data-processor", "timeout")
    floor = floors.timeout_floor(settings, "data-processor", per_record_p99_ms=float(np.quantile(np.linspace(50, 400, 5000), 0.99)))
    # THEN the bound alone would say 1 s, but the stack's own retry budget sets the value
    assert int(timeout["recommended"].split()[0]) == floor.seconds < 300
    assert timeout["status"] == "recommend" and timeout["confidence"] == 0.95 and timeout["samples"] == 5000
    assert "AWS SDK call" in timeout["floor"] and "floor binds" in timeout["reason"]
    assert recs.functions["data-processor"]["timeout_s"] == floor.seconds


def test_a_raise_to_the_floor_needs_no_data_and_keeps_visibility_six_times(settings):
    # GIVEN the notification handler, whose 60 s timeout is below its own SDK retry budget plus margin
    floor = floors.timeout_floor(settings, "notification-handler", per_record_p99_ms=150)
    assert settings.function("notification-handler").timeout_s < floor.seconds
    data = reports("notification-handler", 40, 150, 256, 80)
    recs = recommend.recommend(settings, data, ["notification-handler"])
    timeout = row(recs, "notification-handler", "timeout")
    # THEN a raise, whatever the sample size, with the queue's visibility kept at 6x
    assert timeout["status"] == "recommend" and timeout["confidence"] == 1.0
    new = recs.functions["notification-handler"]["timeout_s"]
    assert new == floor.seconds
    visibility = recs.queues.get("notification_queue", {}).get(
        "visibility_timeout_s", settings.params.notification_queue.visibility_timeout_s)
    assert visibility >= 6 * new


def test_the_api_floor_above_its_ceiling_is_said_plainly(settings):
    data = reports("api-processor", 4000, np.linspace(20, 300, 4000), 512, 90)
    timeout = row(recommend.recommend(settings, data, ["api-processor"]), "api-processor", "timeout")
    assert timeout["recommended"] == "30 s" and timeout["status"] == "keep"
    assert "above the 30 s ceiling" in timeout["reason"]


def test_timeouts_in_the_window_keep_the_timeout(settings):
    data = pd.concat([reports("data-processor", 4000, 100, 1024, 70),
                      reports("data-processor", 3, 300_000, 1024, 70, status="timeout")])
    timeout = row(recommend.recommend(settings, data, ["data-processor"]), "data-processor", "timeout")
    assert timeout["status"] == "keep" and "timed out" in timeout["reason"]


def test_usage_floor_raises_memory_when_too_tight(settings):
    data = reports("notification-handler", 200, 20, 256, 250)
    recs = recommend.recommend(settings, data, ["notification-handler"])
    memory = row(recs, "notification-handler", "memory")
    assert memory["status"] == "recommend" and recs.functions["notification-handler"]["memory_mb"] >= 250 * 1.3


def test_without_tuning_a_smaller_memory_is_never_recommended(settings):
    recs = recommend.recommend(settings, reports("api-processor", 300, 80, 512, 60), ["api-processor"])
    memory = row(recs, "api-processor", "memory")
    assert memory["status"] == "keep" and memory["recommended"] == "512" and "power" in memory["needed"]


def test_a_clear_tuned_saving_is_recommended_with_its_saving_and_patch(settings, tmp_path):
    # GIVEN power tuning that measured 512 MB clearly cheaper than the current 2,048 MB (an I/O-bound function)
    rng = np.random.default_rng(1)
    tuned = tuned_run({512: list(400 + rng.normal(0, 5, 30)), 1024: list(380 + rng.normal(0, 5, 30)),
                       2048: list(370 + rng.normal(0, 5, 30))})
    data = reports("file-processor", 300, 370, 2048, 90)
    recs = recommend.recommend(settings, data, ["file-processor"], {"file-processor": tuned})
    memory = row(recs, "file-processor", "memory")
    assert memory["status"] == "recommend" and memory["recommended"] == "512"
    assert memory["monthly_saving_usd"] > 0 and memory["confidence"] >= 0.95
    for env in config.ENVIRONMENTS:
        shutil.copy(config.PARAMS_DIR / f"{env}.yaml", tmp_path / f"{env}.yaml")
    patch = recs.patch("local", params_dir=tmp_path)
    assert "memory_mb: 512" in patch.diff
    assert (tmp_path / "local.yaml").read_text() == patch.before    # nothing written until apply()


def test_sizes_within_the_noise_keep_the_current_memory(settings):
    # GIVEN a CPU-bound function: cost is flat below one vCPU, so 256 MB and 2,048 MB cost the same within noise
    rng = np.random.default_rng(2)
    tuned = tuned_run({256: list(800 * (1 + rng.normal(0, 0.01, 40))),
                       2048: list(100 * (1 + rng.normal(0, 0.01, 40)))})
    recs = recommend.recommend(settings, reports("file-processor", 300, 100, 2048, 90), ["file-processor"],
                               {"file-processor": tuned})
    memory = row(recs, "file-processor", "memory")
    # THEN no confident-looking 8x change: keep, with the reason
    assert memory["status"] == "keep" and memory["recommended"] == "2048" and "within the noise" in memory["reason"]
    assert "memory_mb" not in recs.functions.get("file-processor", {})


def test_a_tuned_choice_never_goes_below_the_usage_floor(settings):
    data = reports("file-processor", 300, 400, 2048, 600)   # peaks at 600 MB in the window
    tuned = tuned_run({256: [300.0] * 20, 512: [310.0] * 20, 1024: [320.0] * 20, 2048: [330.0] * 20})
    recs = recommend.recommend(settings, data, ["file-processor"], {"file-processor": tuned})
    memory = row(recs, "file-processor", "memory")
    assert int(memory["recommended"]) >= 600 * 1.3 and "600 MB" in memory["floor"]


def test_out_of_memory_during_tuning_makes_a_size_ineligible(settings):
    tuned = tuned_run({256: [300.0] * 20, 1024: [320.0] * 20, 2048: [330.0] * 20},
                      errors={256: "Runtime.OutOfMemory"})
    recs = recommend.recommend(settings, reports("file-processor", 100, 330, 2048, 90), ["file-processor"],
                               {"file-processor": tuned})
    assert row(recs, "file-processor", "memory")["recommended"] != "256"


@pytest.mark.parametrize("threshold", [1.5, -0.1, "high"])
def test_a_threshold_outside_0_1_gives_a_clear_message_and_no_recommendation(settings, threshold):
    data = reports("notification-handler", 200, 20, 256, 250)    # a raise to the floor, confidence 1.0
    recs = recommend.recommend(settings, data, ["notification-handler"], min_confidence=threshold)
    assert recs.problems and "outside 0..1" in recs.problems[0]
    assert "recommend" not in set(recs.table["status"]) and recs.empty


def test_a_recommend_below_the_threshold_becomes_insufficient_data(settings):
    data = reports("data-processor", 5000, np.linspace(50, 400, 5000), 1024, 70)
    recs = recommend.recommend(settings, data, ["data-processor"], min_confidence=0.99)
    timeout = row(recs, "data-processor", "timeout")
    assert timeout["status"] == "insufficient-data" and "below min_confidence 0.99" in timeout["reason"]
    assert timeout["recommended"] == timeout["current"] and "timeout_s" not in recs.functions.get("data-processor", {})


def test_recommendations_become_one_patch_of_recommend_rows_only(settings, tmp_path, monkeypatch):
    for env in config.ENVIRONMENTS:
        shutil.copy(config.PARAMS_DIR / f"{env}.yaml", tmp_path / f"{env}.yaml")
    monkeypatch.setenv("WORKBOOK_PARAMS_DIR", str(tmp_path))
    dev = config.load("dev")
    data = pd.concat([reports("data-processor", 200, 90_000, 1024, 1500), reports("scheduler", 5, 10, 512, 50)])
    recs = recommend.recommend(dev, data, ["data-processor", "scheduler"])
    rows = recs.table.set_index(["function", "kind"])
    assert rows.loc[("data-processor", "memory"), "recommended"] == "1984"     # 1,500 MB peak + 30%, in 64 MB steps
    assert rows.loc[("data-processor", "timeout"), "status"] == "insufficient-data"   # 200 < 2,995
    assert set(recs.patch("dev", tmp_path).changes) == {"functions.data-processor"}


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


def test_status_enum_is_the_closed_set():
    assert {s.value for s in Status} == {"recommend", "keep", "insufficient-data"}


def test_check_rows_finds_a_recommend_below_its_floor_or_from_thin_data(settings):
    good = recommend.recommend(settings, reports("data-processor", 5000, np.linspace(50, 400, 5000), 1024, 70),
                               ["data-processor"]).table.to_dict(orient="records")
    assert recommend.check_rows(good) == []
    below = {"function": "x", "kind": "memory", "current": "1024", "recommended": "256", "status": "recommend",
             "floor": "320 MB: peak 231 MB + 30% headroom", "samples": 50}
    thin = {"function": "y", "kind": "timeout", "current": "300 s", "recommended": "61 s", "status": "recommend",
            "floor": "61 s (downstream)", "samples": 103}
    kept = {**below, "status": "keep"}
    assert [p.split(":")[0] for p in recommend.check_rows([below, thin, kept])] == ["x memory", "y timeout"]

"""The summary from the notebooks' scraps."""
from workbook.report import summary


def test_full_summary():
    scraps = {
        "01-deploy": {"deploy_mode": "offline-plan", "deploy_message": "Offline plan: nothing was deployed.",
                      "resource_count": 159},
        "02-metrics": {"health": [
            {"function": "api-processor", "invocations": 900, "errors": 9, "throttles": 0, "p99_ms": 120.0},
            {"function": "auth-handler", "invocations": 100, "errors": 1, "throttles": 2, "p99_ms": 8.0}],
            "alarms_in_alarm": ["lwb-local-l01-auth-handler-throttles"]},
        "03-cold-starts": {"cold_starts": [{"function": "api-processor", "cold_start_rate": 0.02},
                                           {"function": "auth-handler", "cold_start_rate": 0.1}]},
        "04-cost": {"cost": [{"function": "api-processor", "total_usd": 0.1}], "cost_monthly_usd": 12.5,
                    "cost_source": "model only (local endpoint)"},
        "05-tuning": {"recommendations": [
            {"function": "api-processor", "kind": "memory", "monthly_saving_usd": 1.0},
            {"function": "auth-handler", "kind": "timeout", "monthly_saving_usd": None}]},
    }
    view = summary.build(scraps)
    text = " ".join(view.headlines)
    assert "1,000 invocations, 10 errors (1.00%), 2 throttles" in text
    assert "1 alarm(s) in ALARM" in text and "$12.50" in text and "Offline plan" in text
    assert list(view.health["cold_start_rate"]) == [0.02, 0.1]
    assert view.recommendations.iloc[0]["function"] == "api-processor"
    assert not view.missing
    assert "(#04-cost)" in view.links()


def test_missing_notebooks_are_named_not_fatal():
    view = summary.build({"02-metrics": {"health": [], "alarms_in_alarm": []}})
    assert "01-deploy" in view.missing and "05-tuning" in view.missing
    assert any("Not in this run" in h for h in view.headlines)
    assert view.health.empty and view.recommendations.empty


def test_empty_run_folder(tmp_path):
    assert summary.collect(tmp_path) == {}
    assert summary.build({}).missing == list(summary.DETAIL_NOTEBOOKS)

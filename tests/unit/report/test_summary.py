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
            {"function": "api-processor", "kind": "memory", "current": "512", "recommended": "256",
             "status": "recommend", "confidence": 0.97, "samples": 60, "monthly_saving_usd": 1.0},
            {"function": "auth-handler", "kind": "timeout", "current": "30 s", "recommended": "3 s",
             "status": "recommend", "confidence": 0.95, "samples": 4000, "monthly_saving_usd": None}]},
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


TUNING = {"recommendations": [
    # the case: a cent a month at 0.48 confidence must not head the list
    {"function": "file-processor", "kind": "memory", "current": "2048", "recommended": "256", "status": "recommend",
     "confidence": 0.48, "samples": 48, "monthly_saving_usd": 0.01, "needed": "", "reason": "power tuning"},
    {"function": "auth-handler", "kind": "timeout", "current": "30 s", "recommended": "3 s", "status": "recommend",
     "confidence": 0.95, "samples": 4000, "monthly_saving_usd": None, "needed": "", "reason": "bound"},
    {"function": "api-processor", "kind": "timeout", "current": "30 s", "recommended": "30 s",
     "status": "insufficient-data", "confidence": 0.43, "samples": 556, "needed": "2,439 more invocations",
     "reason": "too few"},
    {"function": "data-processor", "kind": "memory", "current": "1024", "recommended": "1024", "status": "keep",
     "confidence": None, "samples": 103, "needed": "", "reason": "headroom"}],
    "timeout_backtest": [{"function": "auth-handler", "cut": 0}, {"function": "api-processor", "cut": 0}]}


def test_only_confident_recommendations_reach_the_top_the_rest_need_more_data():
    view = summary.build({"05-tuning": TUNING})
    assert list(view.recommendations["function"]) == ["auth-handler"]
    needs = view.needs_data.set_index("function")
    assert set(needs.index) == {"file-processor", "api-processor"}
    assert "below min_confidence 0.8" in needs.loc["file-processor", "needed"]
    assert needs.loc["api-processor", "needed"] == "2,439 more invocations"
    text = " ".join(view.headlines)
    assert "1 change(s) recommended at confidence >= 0.8; 2 need more data; 1 setting(s) hold." in text
    assert "0 invocation(s) would have been cut" in text


def test_a_threshold_outside_0_1_promotes_nothing_and_says_so():
    view = summary.build({"05-tuning": TUNING}, min_confidence=2)
    assert view.recommendations.empty and "outside 0..1" in view.problems[0]
    assert summary.build({"05-tuning": TUNING}, min_confidence=0.4).recommendations["function"].tolist() == [
        "file-processor", "auth-handler"]


def test_links_reach_the_runbook_sections_or_the_notebooks_in_lab():
    view = summary.Summary()
    assert "[Cost](#04-cost)" in view.links()
    assert "[Cost](04-cost.ipynb)" in view.links(in_runbook=False)


def test_in_lab_the_latest_run_of_the_env_opens_by_default(tmp_path):
    # GIVEN an outputs folder with two runs of local, latest pointing at the newer one
    runs = tmp_path / "local"
    (runs / "20261101T000000Z").mkdir(parents=True)
    (runs / "20261102T000000Z").mkdir()
    (runs / "latest").symlink_to("20261102T000000Z")
    # WHEN no run folder is given
    folder, sentence = summary.choose_run("local", None, tmp_path)
    # THEN the latest is chosen and the sentence says how to choose another
    assert folder == (runs / "20261102T000000Z").resolve()
    assert "latest finished run" in sentence and "run_folder" in sentence
    # AND a given folder wins; without any run, one line says how to make or choose one
    assert summary.choose_run("local", runs / "20261101T000000Z", tmp_path)[0] == runs / "20261101T000000Z"
    none, how = summary.choose_run("dev", None, tmp_path)
    assert none is None and "workbook run --env dev" in how and "run_folder" in how and "\n" not in how

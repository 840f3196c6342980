"""Compute Optimizer beside our advice (workbook.tuning.compute_optimizer), against botocore's Stubber on
GetLambdaFunctionRecommendations' documented shapes."""
from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from infra import config
from workbook.tuning import compute_optimizer as co

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def settings():
    return config.load("prod")


@pytest.fixture()
def client():
    return boto3.client("compute-optimizer", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def recommendation(settings, key, *, finding="NotOptimized", reasons=("MemoryOverprovisioned",), memory=256,
                   current=None):
    name = settings.function_name(key)
    return {
        "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:$LATEST", "functionVersion": "$LATEST",
        "accountId": ACCOUNT, "currentMemorySize": current or settings.function(key).memory_mb,
        "numberOfInvocations": 12_345, "lookbackPeriodInDays": 14.0,
        "lastRefreshTimestamp": datetime(2025, 12, 1, tzinfo=UTC), "finding": finding,
        "findingReasonCodes": list(reasons), "currentPerformanceRisk": "Low",
        "utilizationMetrics": [{"name": "Duration", "statistic": "Average", "value": 120.0}],
        "memorySizeRecommendationOptions": [
            {"rank": 2, "memorySize": memory * 2, "projectedUtilizationMetrics": [
                {"name": "Duration", "statistic": "Expected", "value": 90.0}]},
            {"rank": 1, "memorySize": memory, "projectedUtilizationMetrics": [
                {"name": "Duration", "statistic": "LowerBound", "value": 100.0},
                {"name": "Duration", "statistic": "Expected", "value": 130.0}],
             "savingsOpportunity": {"savingsOpportunityPercentage": 40.0,
                                    "estimatedMonthlySavings": {"currency": "USD", "value": 12.5}}}],
    }


def test_the_stacks_functions_are_read_across_pages(settings, client):
    other = recommendation(settings, "scheduler")
    other["functionArn"] = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:someone-elses"
    with Stubber(client) as stub:
        stub.add_response("get_lambda_function_recommendations",
                          {"lambdaFunctionRecommendations": [recommendation(settings, "api-processor"), other],
                           "nextToken": "page-2"}, {})
        stub.add_response("get_lambda_function_recommendations",
                          {"lambdaFunctionRecommendations": [recommendation(settings, "scheduler", finding="Optimized",
                                                                            reasons=())]}, {"nextToken": "page-2"})
        advice = co.load_advice(settings, ["api-processor", "scheduler", "auth-handler"], client=client)
        stub.assert_no_pending_responses()
    row = advice.set_index("function").loc["api-processor"]
    assert (row["finding"], row["reasons"], row["co_memory_mb"], row["co_expected_duration_ms"]) == (
        "NotOptimized", "MemoryOverprovisioned", 256, 130.0)       # the rank-1 option, its Expected duration
    assert (row["co_monthly_savings_usd"], row["co_savings_pct"], row["lookback_days"], row["invocations"]) == (
        12.5, 40.0, 14.0, 12_345)
    assert set(advice["function"]) == {"api-processor", "scheduler"}
    assert "no recommendation for auth-handler" in advice.attrs["note"]


@pytest.mark.parametrize("code, says", [("OptInRequiredException", "has not opted in"),
                                        ("AccessDeniedException", "was denied")])
def test_no_opt_in_or_a_denied_call_is_one_line(settings, client, code, says):
    with Stubber(client) as stub:
        stub.add_client_error("get_lambda_function_recommendations", service_error_code=code, http_status_code=400)
        advice = co.load_advice(settings, ["api-processor"], client=client)
    assert advice.empty and says in advice.attrs["note"] and "\n" not in advice.attrs["note"]


def test_local_runs_say_it_is_an_aws_service(settings, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    advice = co.load_advice(settings, ["api-processor"])
    assert advice.empty and "not on the local endpoint" in advice.attrs["note"]


def test_beside_ours_says_where_and_why_they_differ(settings, client):
    with Stubber(client) as stub:
        stub.add_response("get_lambda_function_recommendations", {"lambdaFunctionRecommendations": [
            recommendation(settings, "api-processor", memory=256),
            recommendation(settings, "scheduler", memory=128),
            recommendation(settings, "data-processor", finding="Unavailable", reasons=("InsufficientData",)),
        ]}, {})
        advice = co.load_advice(settings, ["api-processor", "scheduler", "data-processor", "auth-handler"], client=client)
    ours = pd.DataFrame([
        {"function": "api-processor", "kind": "memory", "recommended": 512, "status": "recommend"},
        {"function": "scheduler", "kind": "memory", "recommended": 128, "status": "recommend"},
        {"function": "data-processor", "kind": "memory", "recommended": 2048, "status": "recommend"},
        {"function": "api-processor", "kind": "timeout", "recommended": "10 s", "status": "keep"},
    ])
    table = co.beside_ours(advice, ours, settings, ["api-processor", "scheduler", "data-processor", "auth-handler"])
    why = table.set_index("function")["why"]
    assert why["scheduler"] == "the same size"
    assert "memory only, no payload classes" in why["api-processor"]
    assert "too little data (InsufficientData)" in why["data-processor"]
    assert "needs 50 invocations in 14 days" in why["auth-handler"]
    assert table.set_index("function").loc["api-processor", "our_memory_mb"] == 512


def test_sizes_above_its_limit_are_ours_alone(settings):
    advice = pd.DataFrame([{"function": "api-processor", "finding": "Optimized", "reasons": "", "co_memory_mb": 1792}])
    ours = pd.DataFrame([{"function": "api-processor", "kind": "memory", "recommended": 3008, "status": "recommend"}])
    why = co.beside_ours(advice, ours, settings, ["api-processor"])["why"].iloc[0]
    limit = f"{co.CO_MAX_MEMORY_MB:,} MB"
    assert limit in why and ("only ours applies" in why or "does not go" in why)


def test_the_summary_shows_what_05_tuning_recorded():
    from workbook.report import summary

    beside = [{"function": "api-processor", "our_memory_mb": 512, "co_memory_mb": 256, "why": "they differ: ..."}]
    view = summary.build({"05-tuning": {"recommendations": [], "compute_optimizer": {"note": "one line", "beside": beside}}})
    assert view.compute_optimizer_note == "one line"
    assert view.compute_optimizer.to_dict(orient="records") == beside
    assert summary.build({}).compute_optimizer.empty

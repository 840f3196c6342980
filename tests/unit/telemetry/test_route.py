"""The route choice (workbook.telemetry.route): one GetMetricData of Invocations over the window, raw at or
below the threshold, aggregate above it; the local endpoint keeps the raw route and says so. Against
botocore's Stubber, which checks each request against CloudWatch's API model."""
from __future__ import annotations

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from infra import config
from workbook.telemetry import logs, route

START, END = pd.Timestamp("2025-11-01 00:00", tz="UTC"), pd.Timestamp("2025-11-08 00:00", tz="UTC")
FUNCTIONS = ["wb-prod-api-processor", "wb-prod-data-processor"]


@pytest.fixture()
def cloudwatch():
    return boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _expect(stub, values_by_function, next_token=None, token=None):
    queries = [{"Id": f"i{i}", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations",
                   "Dimensions": [{"Name": "FunctionName", "Value": name}]},
        "Period": 7 * 24 * 3600, "Stat": "Sum"}} for i, name in enumerate(FUNCTIONS)]
    expected = {"MetricDataQueries": queries, "StartTime": START.timestamp(), "EndTime": END.timestamp()}
    if token:
        expected["NextToken"] = token
    response = {"MetricDataResults": [{"Id": f"i{i}", "Label": "Invocations", "Timestamps": [START.to_pydatetime()] * len(v),
                                       "Values": v, "StatusCode": "Complete"}
                                      for i, v in enumerate(values_by_function)]}
    if next_token:
        response["NextToken"] = next_token
    stub.add_response("get_metric_data", response, expected)


@pytest.mark.parametrize("total, expected", [(route.RAW_ROUTE_MAX_INVOCATIONS - 1, route.Route.RAW),
                                             (route.RAW_ROUTE_MAX_INVOCATIONS, route.Route.RAW),
                                             (route.RAW_ROUTE_MAX_INVOCATIONS + 1, route.Route.AGGREGATE)])
def test_the_route_is_chosen_at_the_threshold_from_one_call(cloudwatch, total, expected, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with Stubber(cloudwatch) as stub:
        _expect(stub, [[float(total - 1000)], [1000.0]])
        choice = route.choose_route(FUNCTIONS, START, END, client=cloudwatch)
        stub.assert_no_pending_responses()
    assert choice.route is expected and choice.invocations == total
    assert f"{total:,}" in choice.reason and f"{route.RAW_ROUTE_MAX_INVOCATIONS:,}" in choice.reason
    assert choice.attrs()["route"] == expected.value


def test_the_threshold_is_a_parameter_and_pages_are_summed(cloudwatch):
    with Stubber(cloudwatch) as stub:
        _expect(stub, [[5.0], [5.0]], next_token="more")
        _expect(stub, [[1.0], []], token="more")
        choice = route.choose_route(FUNCTIONS, START, END, client=cloudwatch, threshold=10)
    assert choice.route is route.Route.AGGREGATE and choice.invocations == 11


def test_an_unreadable_metric_takes_the_route_that_serves_any_volume(cloudwatch):
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("get_metric_data", service_error_code="AccessDenied", http_status_code=403)
        choice = route.choose_route(FUNCTIONS, START, END, client=cloudwatch)
    assert choice.route is route.Route.AGGREGATE and "could not be read" in choice.reason


def test_the_local_endpoint_keeps_the_raw_route_and_says_so(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    choice = route.choose_route(FUNCTIONS, START, END)       # no call: nothing listens on port 1
    assert choice.route is route.Route.RAW and "local endpoint" in choice.reason


def test_load_for_env_records_the_route_on_the_local_endpoint(local_endpoint):
    settings = config.load("local")
    df = logs.load_for_env(settings, START, END)
    assert df.attrs["route"] == "raw" and "local endpoint" in df.attrs["route_reason"]


def test_load_for_env_says_when_raw_rows_were_read_against_the_advice(local_endpoint):
    settings = config.load("local")
    advice = route.RouteChoice(route.Route.AGGREGATE, "900,000 invocations", 900_000)
    df = logs.load_for_env(settings, START, END, route=advice)
    assert df.attrs["route"] == "raw" and df.attrs["route_reason"].endswith("read raw all the same (drill-down)")


def test_a_notebook_says_the_route_in_one_sentence():
    df = pd.DataFrame()
    df.attrs.update(route.local_choice().attrs())
    assert logs.route_sentence(df).startswith("Route: **raw** (the local endpoint")

"""Telemetry ships log events and metric samples to CloudWatch (moto in process)."""
from __future__ import annotations

import time

import pytest

moto = pytest.importorskip("moto")

from workbook.local.sandbox.telemetry import MAX_EVENT_BYTES, Telemetry


@pytest.fixture
def clients(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3

    with moto.mock_aws():
        made: dict = {}

        def client(service: str):
            if service not in made:
                made[service] = boto3.client(service, region_name="us-east-1")
            return made[service]

        yield client


def test_logs_and_metrics_arrive_with_every_sample(clients):
    # Stamped now: CloudWatch Logs (and moto) refuse events older than 14 days, so a fixed epoch goes stale.
    now_ms = int(time.time() * 1000)
    stream = time.strftime("%Y/%m/%d/[$LATEST]abc", time.gmtime(now_ms / 1000))
    telemetry = Telemetry(clients, log_interval_s=60, metric_interval_s=60)
    try:
        telemetry.log("/aws/lambda/f", stream, [(now_ms, "START RequestId: r"),
                                                (now_ms + 1, "x" * (MAX_EVENT_BYTES + 10))])
        for duration_ms in (1.0, 2.0, 2.0, 40.0):
            telemetry.metric("AWS/Lambda", "Duration", duration_ms, "Milliseconds", {"FunctionName": "f"})
        telemetry.emf('{"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "App", "Dimensions": [["svc"]], '
                      '"Metrics": [{"Name": "Orders", "Unit": "Count"}]}]}, "svc": "api", "Orders": [1, 2]}')
        telemetry.flush()
    finally:
        telemetry.close()
    events = clients("logs").filter_log_events(logGroupName="/aws/lambda/f")["events"]
    assert [e["message"][:5] for e in events] == ["START", "xxxxx"]
    assert len(events[1]["message"].encode()) == MAX_EVENT_BYTES
    stats = clients("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Duration", Dimensions=[{"Name": "FunctionName", "Value": "f"}],
        StartTime="2000-01-01", EndTime="2100-01-01", Period=3600 * 24 * 365 * 100, Statistics=["SampleCount", "Sum"])
    point = stats["Datapoints"][0]
    assert point["SampleCount"] == 4 and point["Sum"] == 45.0
    orders = clients("cloudwatch").list_metrics(Namespace="App")["Metrics"]
    assert orders and orders[0]["Dimensions"] == [{"Name": "svc", "Value": "api"}]

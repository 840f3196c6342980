"""Health per function and alarm evaluation."""
import pandas as pd
import pytest

from infra import config
from workbook.analysis import health


def frame(rows):
    return pd.DataFrame([dict(function=f, metric=m, stat=s, timestamp=pd.Timestamp("2026-01-01", tz="UTC"),
                              value=v, source=src) for f, m, s, v, src in rows])


@pytest.fixture
def settings():
    return config.load("local")


def test_per_function_rates_and_percentiles(settings):
    window = frame([
        ("api-processor", "Invocations", "Sum", 200, "cloudwatch"),
        ("api-processor", "Errors", "Sum", 4, "cloudwatch"),
        ("api-processor", "Throttles", "Sum", 1, "cloudwatch"),
        ("api-processor", "Duration", "p99", 27_000, "logs"),
        ("api-processor", "Duration", "p50", 12, "logs"),
    ])
    table = health.per_function(window, settings, ["api-processor", "scheduler"])
    api = table.set_index("function").loc["api-processor"]
    assert api["error_rate_pct"] == 2.0 and api["throttles"] == 1 and api["p99_pct_of_timeout"] == 90.0
    assert api["percentile_source"] == "logs"
    scheduler = table.set_index("function").loc["scheduler"]
    assert scheduler["invocations"] == 0 and pd.isna(scheduler["p99_ms"])


def test_empty_window_gives_a_row_per_function(settings):
    table = health.per_function(pd.DataFrame(columns=["function", "metric", "stat", "timestamp", "value", "source"]),
                                settings, ["api-processor"])
    assert list(table["function"]) == ["api-processor"] and table.loc[0, "invocations"] == 0


def test_local_alarm_evaluation_uses_the_params_thresholds(settings, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    window = frame([("api-processor", "Invocations", "Sum", 100, "cloudwatch"),
                    ("api-processor", "Errors", "Sum", 5, "cloudwatch"),
                    ("auth-handler", "Invocations", "Sum", 100, "cloudwatch"),
                    ("auth-handler", "Throttles", "Sum", 3, "cloudwatch")])
    table = health.per_function(window, settings, ["api-processor", "auth-handler"])
    state = health.alarms_in_alarm(settings, table)
    assert state.source == "evaluated locally" and "does not evaluate" in state.note
    assert state.names == ["lwb-local-l01-api-processor-error-rate", "lwb-local-l01-auth-handler-throttles"]


def test_window_period_is_a_multiple_of_a_minute():
    start = pd.Timestamp("2026-01-01", tz="UTC")
    assert health.window_period_s(start, start + pd.Timedelta(seconds=3601)) == 3660
    assert health.window_period_s(start, start) == 60


def test_aws_alarms_come_from_cloudwatch(settings, monkeypatch):
    from moto import mock_aws

    from workbook import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        client = aws.client("cloudwatch", "us-east-1")
        for name in ("lwb-local-l01-api-processor-throttles", "other-stack-alarm", "lwb-local-l01-scheduler-error-rate"):
            client.put_metric_alarm(AlarmName=name, MetricName="Throttles", Namespace="AWS/Lambda", Statistic="Sum",
                                    Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
        client.set_alarm_state(AlarmName="lwb-local-l01-api-processor-throttles", StateValue="ALARM", StateReason="test")
        client.set_alarm_state(AlarmName="other-stack-alarm", StateValue="ALARM", StateReason="test")
        state = health.alarms_in_alarm(settings, health.per_function(frame([]), settings, []))
    aws.reset_clients()
    assert state.source == "cloudwatch" and state.names == ["lwb-local-l01-api-processor-throttles"]

"""workbook.aws: the one client factory."""
from workbook import aws


def test_service_specific_endpoint_wins(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1111")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:2222")
    aws.reset_clients()
    assert aws.client("lambda").meta.endpoint_url == "http://127.0.0.1:2222"
    assert aws.client("sqs").meta.endpoint_url == "http://127.0.0.1:1111"
    assert aws.client("s3").meta.config.s3["addressing_style"] == "path"
    aws.reset_clients()


def test_no_endpoint_means_aws(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    assert not aws.is_local()
    assert "amazonaws.com" in aws.client("sqs", "eu-west-1").meta.endpoint_url
    aws.reset_clients()


def test_config_overrides_with_dicts_are_cached(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    first = aws.client("logs", "us-east-1", retries={"max_attempts": 2, "mode": "standard"})
    assert first is aws.client("logs", "us-east-1", retries={"mode": "standard", "max_attempts": 2})
    assert first.meta.config.retries["mode"] == "standard"
    aws.reset_clients()

"""Sample events have AWS's shapes and pass the handlers' own parsers."""
import json
from pathlib import Path
from urllib.parse import unquote_plus

from workbook.tuning import payloads as events

HANDLERS = Path(__file__).resolve().parents[3] / "handlers"


def test_s3_key_is_url_encoded_like_s3():
    event = events.s3_object_created("b", "incoming/a file+x.png", 10)
    key = event["Records"][0]["s3"]["object"]["key"]
    assert key == "incoming/a+file%2Bx.png" and unquote_plus(key) == "incoming/a file+x.png"


def test_sqs_batch_shape():
    event = events.sqs_batch([{"kind": "k", "payload": {}}] * 3, "arn:aws:sqs:eu-west-1:123456789012:q")
    assert len(event["Records"]) == 3
    assert event["Records"][0]["awsRegion"] == "eu-west-1"
    assert json.loads(event["Records"][0]["body"]) == {"kind": "k", "payload": {}}


def test_sns_via_sqs_wraps_the_envelope():
    event = events.sns_via_sqs([{"a": 1}], "arn:aws:sns:us-east-1:123456789012:t", "arn:aws:sqs:us-east-1:123456789012:q")
    envelope = json.loads(event["Records"][0]["body"])
    assert envelope["Type"] == "Notification" and json.loads(envelope["Message"]) == {"a": 1}


def test_authorizer_request_carries_the_bearer_token():
    event = events.authorizer_request("abc.def.ghi")
    assert event["type"] == "REQUEST" and event["identitySource"] == ["Bearer abc.def.ghi"]


def test_data_processor_accepts_the_sample_body(monkeypatch):
    monkeypatch.syspath_prepend(str(HANDLERS))
    message = {"kind": "tuning.sample", "business_key": "tune-1", "payload": {"values": [1, 2]}}
    for name in ("WORKBOOK_ENV", "DB_SECRET_ARN", "NOTIFICATIONS_TOPIC_ARN"):
        monkeypatch.setenv(name, "arn:aws:sns:us-east-1:123456789012:x" if name != "WORKBOOK_ENV" else "local")
    monkeypatch.setenv("WORKBOOK_FUNCTION", "data-processor")
    import importlib

    module = importlib.import_module("data_processor")
    assert module.parse_message(json.dumps(message))["kind"] == "tuning.sample"

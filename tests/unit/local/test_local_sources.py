"""Event-source rules: partial-batch responses, schedules, HTTP routing and CORS, traffic profiles."""
from __future__ import annotations

import json
from datetime import UTC

import pytest

from workbook.local import commands as cli
from workbook.local import endpoints, sources, traffic
from workbook.local.sandbox.models import InvocationOutcome

BATCH = [{"MessageId": "m1"}, {"MessageId": "m2"}, {"MessageId": "m3"}]


def _outcome(payload) -> InvocationOutcome:
    return InvocationOutcome("r", "f", json.dumps(payload).encode())


@pytest.mark.parametrize("payload, failed, whole", [
    (None, set(), False),                                                    # all success
    ({"batchItemFailures": []}, set(), False),                               # all success, explicit
    ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}, False),      # partial failure
    ({"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in BATCH]}, {"m1", "m2", "m3"}, False),
    ({"batchItemFailures": [{"itemIdentifier": "nope"}]}, set(), True),      # unknown id: whole batch fails
    ({"batchItemFailures": [{}]}, set(), True),                              # malformed: whole batch fails
])
def test_partial_batch_responses(payload, failed, whole):
    assert sources._batch_item_failures(_outcome(payload), BATCH) == (failed, whole)


def test_schedule_expressions():
    assert sources._rate_seconds("rate(5 minutes)") == 300
    assert sources._rate_seconds("rate(1 hour)") == 3600
    assert sources._rate_seconds("cron(0 12 * * ? *)") is None
    assert sources._dow_to_cron("2-6") == "1-5" and sources._dow_to_cron("MON") == "MON"


def test_s3_keys_keep_their_slashes():
    record = {"s3": {"object": {"key": "in%2Fred+flower%2B1.jpg"}}}
    sources._s3_key_as_aws_encodes_it(record)
    assert record["s3"]["object"]["key"] == "in/red+flower%2B1.jpg"


def test_routes_and_cors():
    method, pattern = endpoints._route_pattern("ANY /items/{id}")
    assert method == "ANY" and pattern.match("/items/42").groupdict() == {"id": "42"}
    assert not pattern.match("/items/42/x")
    assert endpoints._route_pattern("$default") is None
    cors = {"allowOrigins": ["https://a.example"], "allowMethods": ["GET"], "allowHeaders": ["authorization"],
            "maxAge": 300}
    assert endpoints.cors_headers(cors, "https://evil.example", preflight=True) == {}
    preflight = endpoints.cors_headers(cors, "https://a.example", preflight=True)
    assert preflight["Access-Control-Allow-Origin"] == "https://a.example"
    assert preflight["Access-Control-Max-Age"] == "300"


def test_traffic_profiles_and_durations():
    assert traffic.rate_multiplier("steady", 17) == 1.0
    assert traffic.rate_multiplier("burst", 1) < 1 < traffic.rate_multiplier("burst", 17)
    assert traffic.rate_multiplier("mixed", 1) == 1.0
    with pytest.raises(ValueError):
        traffic.rate_multiplier("chaotic", 1)
    assert cli.parse_duration_s("60s") == 60 and cli.parse_duration_s("2m") == 120 and cli.parse_duration_s("90") == 90
    for bad in ("forever", "0s", "2h"):
        with pytest.raises(ValueError):
            cli.parse_duration_s(bad)


def test_read_event_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": }')
    with pytest.raises(ValueError, match="not valid JSON at line 1, column 7"):
        cli.read_event(str(bad))
    with pytest.raises(ValueError, match="no such file"):
        cli.read_event(str(tmp_path / "missing.json"))
    good = tmp_path / "good.json"
    good.write_text('{"a": 1}')
    assert cli.read_event(str(good)) == {"a": 1}


def test_cron_schedules_follow_eventbridge_fields():
    from datetime import datetime

    clock = sources.ScheduleClock.__new__(sources.ScheduleClock)
    noon = clock._following({"schedule": "cron(0 12 * * ? *)"}, datetime(2026, 11, 27, 13, 0, tzinfo=UTC))
    assert noon == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    monday = clock._following({"schedule": "cron(30 8 ? * 2 *)"}, datetime(2026, 11, 27, 0, 0, tzinfo=UTC))
    assert monday.weekday() == 0 and (monday.hour, monday.minute) == (8, 30)
    five = clock._following({"schedule": "rate(5 minutes)"}, datetime(2026, 11, 27, 0, 0, tzinfo=UTC))
    assert five == datetime(2026, 11, 27, 0, 5, tzinfo=UTC)

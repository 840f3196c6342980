"""Every handler against the real-shape fixtures of ``events/real``: its own types and all the others.

A fixture of a handler's own type gives success or a clear 4xx / ``InvalidEvent``; any other type
gives ``InvalidEvent`` (a 400 or a deny for the HTTP handlers), or, for an SQS batch, per-record
failures. None raises anything else, and none loses a message: the harnesses check the database,
S3, the queue and the webhook (see ``handler_harness.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from handler_harness import *  # noqa: F403 - fixtures
from handler_harness import invoke, mint_token
from handler_kit import EVENTS_DIR

REAL_DIR = EVENTS_DIR / "real"
TYPES = sorted(path.name for path in REAL_DIR.iterdir() if path.is_dir())
#: The event types each handler is wired to (infra/compute.py); everything else is foreign to it.
OWN_TYPES = {
    "api_processor": ("http_api_v2", "function_url"),
    "auth_handler": ("authorizer_v2",),
    "data_processor": ("sqs",),
    "file_processor": ("s3", "s3_test_event"),
    "scheduler": ("eventbridge_scheduled",),
    "notification_handler": ("sns", "sns_via_sqs"),
}


def fixtures(*types: str) -> list[tuple[str, Path]]:
    return [(f"{kind}/{path.stem}", path) for kind in types for path in sorted((REAL_DIR / kind).glob("*.json"))]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def own(handler: str) -> list:
    return [pytest.param(path, id=name) for name, path in fixtures(*OWN_TYPES[handler])]


def foreign(handler: str) -> list[tuple[str, Path]]:
    return fixtures(*(kind for kind in TYPES if kind not in OWN_TYPES[handler]))


def test_every_type_has_fixtures_and_a_readme():
    # GIVEN the fixture folder, THEN each trigger of the stack has fixtures and the README names each one
    readme = (REAL_DIR / "README.md").read_text(encoding="utf-8")
    assert set(TYPES) == {kind for kinds in OWN_TYPES.values() for kind in kinds} | {"eventbridge_pattern"}
    for name, _ in fixtures(*TYPES):
        assert name.split("/")[1] in readme, f"{name} is not described in events/real/README.md"


def check_foreign(harness, handler: str) -> None:
    for name, path in foreign(handler):
        harness.reset()
        event = load(path)
        try:
            harness.check(event, invoke(harness.module, event))
        except AssertionError as error:
            raise AssertionError(f"{handler} with {name}: {error}") from error


# --- api-processor -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", own("api_processor"))
def test_api_processor_serves_its_real_events(api_harness, path):
    # GIVEN a real HTTP API or Function URL event (some without stage or routeKey)
    event = load(path)
    # WHEN it is handled
    outcome = invoke(api_harness.module, event)
    # THEN it is served (or refused with a clear 4xx), per the contract
    api_harness.check(event, outcome)
    expected = {"get_items_lambda_authorizer": 200, "post_item_jwt_authorizer": 201, "post_item_base64_body": 201,
                "multi_value_headers_cookies": 200, "named_stage_get_item": 404, "put_item_iam_authorizer": 404,
                "iam_auth_documented": 200, "post_without_stage_or_route_key": 201,
                "get_health_only_top_route_key": 200, "auth_none_base64_body_no_stage": 201, "options_preflight": 204}
    assert outcome.response["statusCode"] == expected[path.stem], outcome


def test_function_url_event_without_stage_is_served_with_the_iam_caller(api_harness):
    # GIVEN aws-lambda-go's Function URL shape: no requestContext.stage, no routeKey anywhere
    event = load(REAL_DIR / "function_url" / "post_without_stage_or_route_key.json")
    assert "stage" not in event["requestContext"] and "routeKey" not in event
    # WHEN it creates an item
    response = invoke(api_harness.module, event).response
    # THEN it is created for the IAM caller, and the event itself is left as it came
    assert response["statusCode"] == 201
    assert json.loads(response["body"])["created_by"] == "arn:aws:iam::111122223333:user/partner-sync"
    assert "stage" not in event["requestContext"]


def test_api_processor_refuses_every_other_event_type(api_harness):
    # GIVEN every fixture of another type (authorizer events included), THEN each is a 400 invalid_event
    check_foreign(api_harness, "api_processor")


# --- auth-handler ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", own("auth_handler"))
def test_auth_handler_denies_the_fixtures_tokens_and_allows_a_valid_one(auth_harness, path):
    # GIVEN a real authorizer event: its token is a placeholder
    event = load(path)
    outcome = invoke(auth_harness.module, event)
    # THEN it is denied
    auth_harness.check(event, outcome)
    assert outcome.response == {"isAuthorized": False}
    # AND the same event with a valid token in its identity source and header is allowed
    token = mint_token("user-1")
    event["identitySource"] = [f"Bearer {token}"]
    event["headers"]["authorization"] = f"Bearer {token}"
    outcome = invoke(auth_harness.module, event)
    auth_harness.check(event, outcome)
    assert outcome.response["isAuthorized"] is True


def test_auth_handler_denies_every_other_event_type(auth_harness):
    check_foreign(auth_harness, "auth_handler")


# --- data-processor ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", own("data_processor"))
def test_data_processor_handles_its_real_batches(data_harness, path):
    # GIVEN a real SQS batch
    event = load(path)
    # WHEN it is handled
    outcome = invoke(data_harness.module, event)
    # THEN every record is stored or listed, exactly (an empty batch is an InvalidEvent)
    data_harness.check(event, outcome)
    if path.stem == "empty_records":
        assert type(outcome.error).__name__ == "InvalidEvent"
    elif path.stem == "poison_between_valid":
        assert outcome.response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    else:
        assert outcome.response == {"batchItemFailures": []}


def test_data_processor_refuses_every_other_event_type(data_harness):
    # SQS batches of other queues (SNS envelopes, S3 notifications) fail record by record; the rest raise
    check_foreign(data_harness, "data_processor")


# --- file-processor ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", own("file_processor"))
def test_file_processor_handles_its_real_events(file_harness, path):
    # GIVEN the uploads the fixture names (keys URL-encoded in the event, with spaces, '+', unicode)
    event = load(path)
    # WHEN it is handled
    outcome = invoke(file_harness.module, event)
    # THEN each record is processed, rejected with a reason, or ignored, as the contract says
    file_harness.check(event, outcome)
    statuses = [result["status"] for result in outcome.response["results"]]
    expected = {"put_key_with_spaces_and_unicode": ["processed"], "copy_key_with_plus_and_parentheses": ["processed"],
                "complete_multipart_pdf_versioned": ["processed"], "two_records_text_and_json": ["processed"] * 2,
                "object_removed_delete": ["ignored"], "put_outside_prefix_and_unsupported_type": ["rejected"] * 2,
                "object_created_via_sqs": ["processed"], "direct": [], "via_sqs": []}
    assert statuses == expected[path.stem]


def test_file_processor_refuses_every_other_event_type(file_harness):
    check_foreign(file_harness, "file_processor")


# --- scheduler ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", own("scheduler"))
def test_scheduler_runs_on_rule_and_scheduler_events(scheduler_harness, path):
    # GIVEN two due rows and a Scheduled Event from a rule or from EventBridge Scheduler (aws.scheduler)
    scheduler_harness.reset([("report.build", {"n": 1}, -1), ("report.build", {"n": 2}, -1)])
    event = load(path)
    # WHEN it is handled
    outcome = invoke(scheduler_harness.module, event)
    # THEN both rows are enqueued, one message each
    scheduler_harness.check(event, outcome)
    assert outcome.response["enqueued"] == 2


def test_scheduler_refuses_every_other_event_type(scheduler_harness):
    check_foreign(scheduler_harness, "scheduler")


# --- notification-handler ----------------------------------------------------------------------

@pytest.mark.parametrize("path", own("notification_handler"))
def test_notification_handler_delivers_its_real_events(notification_harness, path):
    # GIVEN a real SNS event, or an SQS batch of SNS envelopes / raw messages
    event = load(path)
    # WHEN it is handled
    outcome = invoke(notification_harness.module, event)
    # THEN every notification reaches the webhook
    notification_harness.check(event, outcome)
    assert len(notification_harness.webhook.received) == len(event["Records"])


def test_notification_handler_refuses_every_other_event_type(notification_harness):
    # An SQS batch of task messages is delivered as raw messages (raw delivery); the rest raise
    check_foreign(notification_harness, "notification_handler")

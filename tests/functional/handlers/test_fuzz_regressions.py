"""Regression tests for the defects the real-shape fixtures and the fuzzing found, one test each.

Each names what used to happen. They use the same harnesses as the fuzz tests, so the outcome is
also checked against the contract (nothing lost, nothing raised but the handler's input errors).
"""
from __future__ import annotations

import base64
import json
import urllib.parse

import event_strategies as es
import pytest
from handler_harness import *  # noqa: F403 - fixtures
from handler_harness import invoke
from handler_kit import EVENTS_DIR

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
REAL = EVENTS_DIR / "real"


def real(name: str) -> dict:
    return json.loads((REAL / f"{name}.json").read_text(encoding="utf-8"))


def status_of(outcome) -> tuple[int, dict]:
    assert outcome.error is None, repr(outcome.error)
    body = outcome.response.get("body")
    return outcome.response["statusCode"], json.loads(body) if body else {}


# --- api-processor -----------------------------------------------------------------------------

def api_request(method: str, path: str, body=None, query=None, **changes) -> dict:
    event = real("http_api_v2/get_items_lambda_authorizer")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["queryStringParameters"] = query
    event["rawQueryString"] = urllib.parse.urlencode(query or {})
    event["body"] = body
    event.update(changes)
    return event


def test_function_url_event_without_stage_or_route_key_is_served(api_harness):
    # Used to raise KeyError: 'stage' inside app.resolve, before any route or exception handler.
    event = real("function_url/get_health_only_top_route_key")
    del event["routeKey"]
    outcome = invoke(api_harness.module, event)
    api_harness.check(event, outcome)
    assert status_of(outcome)[0] == 200


def test_authorizer_event_is_not_served_as_a_request(api_harness):
    # An authorizer (REQUEST) event reaching the API used to be served: GET /items answered 200.
    event = real("authorizer_v2/request_identity_source")
    outcome = invoke(api_harness.module, event)
    assert status_of(outcome) == (400, {"error": "invalid_event", "message": "a Lambda authorizer event, not a request to serve"})


@pytest.mark.parametrize("authorizer", [{"jwt": "token"}, {"jwt": ["x"]}, "not an object"])
def test_malformed_authorizer_context_is_a_400_or_anonymous(api_harness, authorizer):
    # {"jwt": "token"} used to raise AttributeError in caller_identity, outside any handler.
    event = api_request("GET", "/items")
    event["requestContext"]["authorizer"] = authorizer
    outcome = invoke(api_harness.module, event)
    api_harness.check(event, outcome)
    assert status_of(outcome)[0] in (200, 400)
    # AND a context it cannot read never names a caller: the request is anonymous
    assert api_harness.module.caller_identity(event) == "anonymous"


@pytest.mark.parametrize("field, value", [
    ("headers", {"accept": 7}), ("headers", ["accept"]), ("cookies", "a=1"), ("cookies", [1]),
    ("queryStringParameters", {"limit": 5}), ("isBase64Encoded", "false"), ("body", {"name": "x"}),
    ("rawQueryString", 5), ("pathParameters", {"id": None}),
])
def test_fields_powertools_reads_are_type_checked(api_harness, field, value):
    # Powertools reads these without checking; a wrong type used to raise inside app.resolve.
    event = api_request("POST", "/items", body='{"name": "x"}')
    event[field] = value
    outcome = invoke(api_harness.module, event)
    api_harness.check(event, outcome)
    assert status_of(outcome)[0] == 400 and status_of(outcome)[1]["error"] == "invalid_event"


@pytest.mark.parametrize("path", ["/items/²", "/items/١٢", "/items/９"])
def test_non_ascii_digits_in_an_item_id_are_not_found(api_harness, path):
    # str.isdigit() accepts them: '²' made int() raise (500), '١٢' read item 12 and '９' item 9.
    api_harness.sql.run("INSERT INTO items (id, name, created_by, updated_by) OVERRIDING SYSTEM VALUE "
                        "VALUES (9, 'nine', 't', 't'), (12, 'twelve', 't', 't') ON CONFLICT DO NOTHING")
    outcome = invoke(api_harness.module, api_request("GET", path))
    assert status_of(outcome)[0] == 404


@pytest.mark.parametrize("query", [{"limit": "²"}, {"limit": "0" * 5000},
                                   {"next_token": base64.urlsafe_b64encode(b"99999999999999999999").decode()},
                                   {"next_token": base64.urlsafe_b64encode(b"-1").decode()}])
def test_bad_paging_arguments_are_400(api_harness, query):
    # '²' and 5,000 zeros made int() raise; a token beyond BIGINT made PostgreSQL fail: all 500s.
    outcome = invoke(api_harness.module, api_request("GET", "/items", query=query))
    assert status_of(outcome)[0] == 400


@pytest.mark.parametrize("body, what", [
    ('{"name": "x", "attributes": {"d": ' + es.deep_json_text(5_000) + "}}", "levels deep"),   # RecursionError
    ('{"name": "x", "version": ' + "9" * 5_000 + "}", "not valid JSON"),            # ValueError without .msg
    ('{"name": "a\\u0000b"}', "NUL"),                                               # PostgreSQL refuses NUL
    ('{"name": "\\ud800"}', "surrogate"),                                           # not UTF-8: pg8000 raised
    ('{"name": "x", "attributes": {"n": NaN}}', "not valid JSON"),                  # jsonb refuses NaN
    ('{"name": "x", "attributes": {"n": 1e999}}', "number JSON cannot represent"),  # parses to inf
    ('{"name": "x", "attributes": ' + json.dumps(es.deep(70, kind="dict")) + "}", "levels deep"),
])
def test_bodies_postgresql_cannot_store_are_400_not_500(api_harness, body, what):
    event = api_request("POST", "/items", body=body)
    outcome = invoke(api_harness.module, event)
    api_harness.check(event, outcome)
    status, answer = status_of(outcome)
    assert status == 400 and what in answer["message"], answer


def test_update_stores_the_name_stripped_as_create_does(api_harness):
    # The length check counted the stripped name, the UPDATE stored it unstripped: a CHECK violation, 500.
    status, item = status_of(invoke(api_harness.module, api_request("POST", "/items", body='{"name": "x"}')))
    assert status == 201
    padded = json.dumps({"name": "renamed" + " " * 250})
    status, updated = status_of(invoke(api_harness.module, api_request("PUT", f"/items/{item['id']}", body=padded)))
    assert status == 200 and updated["name"] == "renamed"


@pytest.mark.parametrize("version", [9999999999999999999, 2**31, 0, -1])
def test_a_version_outside_the_integer_column_is_400(api_harness, version):
    # Found by the nightly profile: PostgreSQL refused to compare 9999999999999999999 with the
    # INTEGER column, a 500.
    status, item = status_of(invoke(api_harness.module, api_request("POST", "/items", body='{"name": "x"}')))
    event = api_request("PUT", f"/items/{item['id']}", body=json.dumps({"name": "y", "version": version}))
    outcome = invoke(api_harness.module, event)
    api_harness.check(event, outcome)
    assert status_of(outcome)[0] == 400


def test_the_nesting_limit_does_not_depend_on_the_callers_stack(api_harness):
    # Found by the nightly profile: json's RecursionError comes at ~1,000 levels minus the caller's
    # stack depth, so a body nested ~950 deep parsed in the test and failed inside the handler.
    events = __import__("common.events", fromlist=["loads_strict"])
    errors = __import__("common.errors", fromlist=["ValidationError"])
    at_limit, beyond = es.deep_json_text(events.MAX_JSON_DEPTH), es.deep_json_text(events.MAX_JSON_DEPTH + 1)

    def verdicts(frames: int) -> tuple:
        if frames:
            return verdicts(frames - 1)
        outcomes = []
        for text in (at_limit, beyond, es.deep_json_text(950)):
            try:
                events.loads_strict(text, "body")
                outcomes.append("ok")
            except errors.ValidationError:
                outcomes.append("refused")
        return tuple(outcomes)

    assert verdicts(0) == verdicts(850) == ("ok", "refused", "refused")


# --- data-processor ----------------------------------------------------------------------------

def sqs_event(*bodies) -> dict:
    return {"Records": [es.sqs_record(body) for body in bodies]}


@pytest.mark.parametrize("bad_body", [
    '{"kind": "k", "payload": {"s": "a\\u0000b"}}',       # PostgreSQL error (an unexpected exception)
    '{"kind": "k", "payload": {"s": "\\udcff"}}',         # UnicodeEncodeError in transform()
    '{"kind": "k", "payload": {"n": NaN}}',               # jsonb refuses NaN
    '{"kind": "k", "payload": {"n": -Infinity}}',
    '{"kind": "k", "business_key": "a\\u0000", "payload": {}}',
    '{"kind": "k", "payload": {"d": ' + es.deep_json_text(3_000) + "}}",   # RecursionError
    '{"kind": "k", "payload": ' + json.dumps(es.deep(80, kind="dict")) + "}",
    '{"kind": "order.created\\n", "payload": {}}',         # '$' matched before the trailing newline
])
def test_messages_postgresql_cannot_store_fail_as_validation_errors(data_harness, bad_body):
    # They failed alone before too, but as unexpected exceptions (or, for the kind, were stored).
    event = sqs_event('{"kind": "ok", "payload": {"n": 1}}', bad_body)
    logs = []
    data_harness.module.logger.registered_handler.setStream(type("S", (), {"write": logs.append, "flush": lambda s: None})())
    outcome = invoke(data_harness.module, event)
    data_harness.check(event, outcome)
    assert outcome.response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    failures = [json.loads(line) for line in logs if '"record failed"' in line]
    assert [f["error"] for f in failures] == ["validation_error"]


@pytest.mark.parametrize("module_fixture", ["data_harness", "notification_harness"])
def test_an_empty_message_id_is_an_invalid_event(request, module_fixture):
    # An empty itemIdentifier makes Lambda fail the whole batch; it used to be reported as is.
    harness = request.getfixturevalue(module_fixture)
    event = sqs_event('{"kind": "k", "payload": {}}')
    event["Records"][0]["messageId"] = ""
    outcome = invoke(harness.module, event)
    harness.check(event, outcome)
    assert type(outcome.error).__name__ == "InvalidEvent"


# --- notification-handler ----------------------------------------------------------------------

@pytest.mark.parametrize("message_id", ["Ā", "a\r\nX-Injected: 1", " ", "é" * 300])
def test_any_message_id_makes_a_header_safe_idempotency_key(notification_harness, message_id):
    # http.client refused these in the Idempotency-Key header: the record failed and never got through.
    envelope = es.sns_envelope('{"a": 1}', message_id)
    event = sqs_event(json.dumps(envelope))
    outcome = invoke(notification_harness.module, event)
    notification_harness.check(event, outcome)
    assert outcome.response == {"batchItemFailures": []}
    key = notification_harness.webhook.received[0]["headers"]["idempotency-key"]
    assert key == notification_harness.module.idempotency_key(message_id)
    assert key.startswith("sha256:") and key == notification_harness.module.idempotency_key(message_id)


def test_an_unsendable_request_gives_back_the_half_open_trial(notification_harness):
    # A request http.client refuses used to leak the half-open trial slot: the breaker stayed
    # half-open "with a trial call in flight" and every later call failed fast.
    module = notification_harness.module
    for _ in range(module.BREAKER.failure_threshold):
        module.BREAKER.record_failure()
    module.BREAKER._opened_at -= module.BREAKER.reset_timeout_s + 1          # the open period is over
    errors = __import__("common.errors", fromlist=["ValidationError"])
    with pytest.raises(errors.ValidationError):
        module.CLIENT.post_json(notification_harness.webhook.url, {"a": 1}, headers={"X-Bad": "a\r\nb"})
    module.CLIENT.post_json(notification_harness.webhook.url, {"a": 1})     # the trial slot is free again
    assert module.BREAKER.state.value == "closed"


def test_direct_sns_record_without_a_notification_is_refused(notification_harness):
    # A direct SNS record's Sns object used to be forwarded as a "raw message" when it had no Type.
    event = real("sns/notification_json_message")
    event["Records"][0]["Sns"] = {"Subject": "no type, no message"}
    outcome = invoke(notification_harness.module, event)
    notification_harness.check(event, outcome)
    assert type(outcome.error).__name__ == "ValidationError" and notification_harness.webhook.received == []


@pytest.mark.parametrize("depth", [2_000, 20_000])
def test_deeply_nested_message_is_forwarded_as_text(notification_harness, depth):
    # json.loads raised RecursionError: the SQS record failed, a direct SNS event raised it.
    event = real("sns/notification_json_message")
    event["Records"][0]["Sns"]["Message"] = es.deep_json_text(depth)
    outcome = invoke(notification_harness.module, event)
    notification_harness.check(event, outcome)
    assert outcome.response == {"delivered": 1}


# --- file-processor ----------------------------------------------------------------------------

def test_sqs_body_that_is_not_json_is_an_invalid_event(file_harness):
    # It raised ValidationError, where every other body that is not an S3 event raises InvalidEvent.
    event = sqs_event("{not json")
    outcome = invoke(file_harness.module, event)
    file_harness.check(event, outcome)
    assert type(outcome.error).__name__ == "InvalidEvent"


@pytest.mark.parametrize("elements", [1, "C3D13FE58DE4C810", ["x"]])
def test_response_elements_that_are_not_an_object_are_ignored(file_harness, elements):
    # Found by the nightly profile: reading the S3 request id (for the correlation id) raised
    # AttributeError before any record was looked at.
    event = {"Records": [es.s3_record("incoming/notes/readme.txt")]}
    event["Records"][0]["responseElements"] = elements
    outcome = invoke(file_harness.module, event)
    file_harness.check(event, outcome)
    assert outcome.response["results"][0]["status"] == "processed"


def test_deeply_nested_json_upload_is_rejected(file_harness):
    # json.load raised RecursionError: the invocation failed (retries, then the DLQ), no FileRejected.
    event = {"Records": [es.s3_record("incoming/deep.json")]}
    outcome = invoke(file_harness.module, event)
    file_harness.check(event, outcome)
    assert outcome.response["results"][0]["reason"] == "validation_error"


@pytest.mark.parametrize("encoded_key", ["incoming/" + "k" * 1100 + ".txt", "incoming/\ud800.txt"])
def test_keys_s3_cannot_have_are_rejected(file_harness, encoded_key):
    # A key over 1,024 bytes reached S3 (an AWS error: the invocation failed and was retried);
    # a lone surrogate made botocore raise UnicodeEncodeError.
    event = {"Records": [es.s3_record(encoded_key)]}
    outcome = invoke(file_harness.module, event)
    file_harness.check(event, outcome)
    assert outcome.response["results"][0]["status"] == "rejected"


def test_output_metadata_is_printable_ascii(file_harness):
    # S3 metadata travels in HTTP headers; a key with CR/LF put them in a header value. Over HTTP,
    # botocore's HTTPClientError became an AwsServiceError, and the upload was retried as if S3 were
    # down (tests/integration/handlers/test_file_processor_http_integration.py shows it on a real endpoint).
    event = {"Records": [es.s3_record(urllib.parse.quote_plus("incoming/line\nbreak.txt", safe="/"))]}
    outcome = invoke(file_harness.module, event)
    file_harness.check(event, outcome)
    assert outcome.response["results"][0]["status"] == "processed"
    head = file_harness.s3.head_object(Bucket="lwb-test-processed", Key="metadata/incoming/line\nbreak.txt.json")
    assert head["Metadata"]["source-key"] == "incoming/line?break.txt"


# --- scheduler ---------------------------------------------------------------------------------

def test_eventbridge_scheduler_events_run_the_scheduler(scheduler_harness):
    # source aws.scheduler used to be an InvalidEvent.
    scheduler_harness.reset([("report.build", {"n": 1}, -1)])
    event = real("eventbridge_scheduled/scheduler_templated_target")
    outcome = invoke(scheduler_harness.module, event)
    scheduler_harness.check(event, outcome)
    assert outcome.response["enqueued"] == 1


def test_deeply_nested_event_is_an_invalid_event(scheduler_harness):
    # json.dumps raised RecursionError while measuring the event.
    scheduler_harness.reset()
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": es.deep(5_000)}
    outcome = invoke(scheduler_harness.module, event)
    scheduler_harness.check(event, outcome)
    assert type(outcome.error).__name__ == "InvalidEvent"


# --- auth-handler ---------------------------------------------------------------------------------

def test_deeply_nested_jwt_header_is_denied(auth_harness):
    header = base64.urlsafe_b64encode(es.deep_json_text(2_000).encode()).decode().rstrip("=")
    event = real("authorizer_v2/request_identity_source")
    event["identitySource"] = [f"Bearer {header}.e30.c2ln"]
    outcome = invoke(auth_harness.module, event)
    # json.loads raised RecursionError here before the verifier caught every failure (issue 10)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.response == {"isAuthorized": False}

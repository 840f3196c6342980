"""api-processor: the items API over a real PostgreSQL, through HTTP API and Function URL events."""
from __future__ import annotations

import base64
import json

import pytest
from handler_kit import LambdaContext, LogCapture


@pytest.fixture
def api(handler_factory, db_secret):
    return handler_factory("api_processor")


@pytest.fixture
def request_factory(event_factory):
    """An HTTP API (or Function URL) event for ``method path`` with an optional body and query."""
    def build(method, path, body=None, query=None, source="http_api_v2", raw_body=None, base64_body=False, **headers):
        event = event_factory(source)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
        if body is not None:
            raw_body = json.dumps(body)
        if raw_body is not None and base64_body:
            raw_body = base64.b64encode(raw_body if isinstance(raw_body, bytes) else raw_body.encode()).decode()
        event["body"] = raw_body
        event["isBase64Encoded"] = base64_body
        event["headers"].update(headers)
        return event
    return build


def call(api, event):
    response = api.handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None, response


def test_health_reports_the_database(api, request_factory):
    # GIVEN the API with its database
    # WHEN /health is called
    status, body, _ = call(api, request_factory("GET", "/health"))
    # THEN it answers 200 with the schema version
    assert status == 200 and body["database"] == "ok" and body["schema_version"] >= 3


def test_create_get_update_list_with_pagination(api, request_factory):
    # GIVEN five items created by the authorizer's principal
    ids = []
    for n in range(5):
        status, body, response = call(api, request_factory("POST", "/items", {"name": f"item {n}", "attributes": {"n": n}}))
        assert status == 201 and body["created_by"] == "user-123"
        assert response["headers"]["Location"] == f"/items/{body['id']}"
        ids.append(body["id"])
    # WHEN one is read and updated
    status, body, _ = call(api, request_factory("GET", f"/items/{ids[2]}"))
    assert status == 200 and body["name"] == "item 2" and body["attributes"] == {"n": 2}
    status, body, _ = call(api, request_factory("PUT", f"/items/{ids[2]}", {"description": "changed", "version": 1}))
    # THEN the update bumps the version
    assert status == 200 and body["description"] == "changed" and body["version"] == 2
    # AND a stale version conflicts
    status, body, _ = call(api, request_factory("PUT", f"/items/{ids[2]}", {"name": "x", "version": 1}))
    assert status == 409 and body["error"] == "conflict"
    # AND listing pages through all items, two at a time
    seen, token = [], None
    while True:
        query = {"limit": "2", **({"next_token": token} if token else {})}
        status, body, _ = call(api, request_factory("GET", "/items", query=query))
        assert status == 200
        seen += [item["id"] for item in body["items"]]
        token = body["next_token"]
        if not token:
            break
    assert seen == ids


def test_function_url_events_are_served_with_the_iam_caller(api, request_factory):
    # GIVEN a Function URL event signed by an IAM user
    event = request_factory("POST", "/items", {"name": "via url"}, source="function_url")
    # WHEN it creates an item
    status, body, _ = call(api, event)
    # THEN the caller identity is the IAM ARN
    assert status == 201 and body["created_by"] == "arn:aws:iam::123456789012:user/ops"


def test_cors_headers_only_for_the_configured_origin(api, request_factory):
    # GIVEN a request from the configured origin and one from elsewhere
    allowed = call(api, request_factory("GET", "/items"))[2]
    other = call(api, request_factory("GET", "/items", origin="https://evil.example"))[2]
    # THEN only the configured origin gets Access-Control-Allow-Origin
    assert allowed["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in other["headers"]


def test_missing_item_is_404(api, request_factory):
    for path in ("/items/999999", "/items/not-a-number", "/nowhere"):
        # WHEN a missing item or route is requested, THEN the answer is 404 with a message
        status, body, _ = call(api, request_factory("GET", path))
        assert status == 404 and body["error"] == "not_found" and body["message"]


@pytest.mark.parametrize("raw_body, base64_body, status, error", [
    (None, False, 400, "validation_error"),                         # no body
    ("{not json", False, 400, "validation_error"),                  # invalid JSON
    ("[1, 2]", False, 400, "validation_error"),                     # not an object
    ('{"name": 42}', False, 400, "validation_error"),               # wrong type
    ('{"description": "no name"}', False, 400, "validation_error"),  # missing field
    ('{"name": ""}', False, 400, "validation_error"),               # empty name
    ('{"name": "x", "owner": "me"}', False, 400, "validation_error"),  # unknown field
    ('{"name": "x", "attributes": []}', False, 400, "validation_error"),
    (b"\xff\xfe{\"name\": \"x\"}", True, 400, "validation_error"),  # non-UTF-8 bytes
    ("not base64!!", True, 400, "validation_error"),
    (json.dumps({"name": "x", "description": "y" * 70_000}), False, 413, "payload_too_large"),  # oversized
])
def test_bad_bodies_get_4xx_with_a_message(api, request_factory, raw_body, base64_body, status, error):
    # GIVEN a create request with a bad body
    event = request_factory("POST", "/items", raw_body=raw_body)
    if base64_body:
        event["isBase64Encoded"] = True
        event["body"] = raw_body if isinstance(raw_body, str) else base64.b64encode(raw_body).decode()
    # WHEN it is handled
    got_status, body, _ = call(api, event)
    # THEN the status and error code say what is wrong, and no trace leaks
    assert (got_status, body["error"]) == (status, error)
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "abc"}, {"limit": "1000"}, {"next_token": "%%%"}])
def test_bad_pagination_is_400(api, request_factory, query):
    status, body, _ = call(api, request_factory("GET", "/items", query=query))
    assert status == 400 and body["error"] == "validation_error"


@pytest.mark.parametrize("event", [{}, {"Records": [{"eventSource": "aws:sqs"}]}, {"version": "1.0", "httpMethod": "GET"},
                                   {"version": "2.0", "requestContext": "x", "rawPath": 1}, [], "GET /items"])
def test_wrong_or_empty_events_get_400(handler_factory, db_secret, event):
    # GIVEN an event that is not an HTTP API / Function URL request
    api = handler_factory("api_processor")
    logs = LogCapture(api)
    # WHEN it is handled
    response = api.handler(event, LambdaContext())
    # THEN the answer is a 400 and a structured log says why
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"] == "invalid_event"
    assert logs.records("invalid event")


def test_database_outage_is_503_without_a_trace(handler_factory, aws, request_factory):
    # GIVEN a database secret pointing at a PostgreSQL that is not running
    import boto3
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="lwb-test/db", SecretString=json.dumps({"host": "/nonexistent", "port": 5432, "username": "postgres",
                                                     "password": "", "dbname": "postgres"}))
    api = handler_factory("api_processor")
    # WHEN items are listed or created
    for event in (request_factory("GET", "/items"), request_factory("POST", "/items", {"name": "x"})):
        status, body, _ = call(api, event)
        # THEN the answer is 503 with a message and no stack trace
        assert status == 503 and body["error"] == "database_unavailable"
        assert "Traceback" not in json.dumps(body) and "File " not in json.dumps(body)


def test_connection_is_reused_and_recycled_when_broken(api, request_factory):
    # GIVEN a warm API that has served one request
    call(api, request_factory("GET", "/items"))
    database = api.db.database()
    assert database.connects == 1
    # WHEN its connection breaks between invocations (server side close)
    database.connection()._sock.close() if hasattr(database.connection(), "_sock") else database.connection().close()
    status, _, _ = call(api, request_factory("GET", "/items"))
    # THEN the next request reconnects once and succeeds
    assert status == 200 and database.connects == 2


def test_stops_before_the_query_when_time_runs_low(api, request_factory):
    # GIVEN less time left than the safety margin
    response = api.handler(request_factory("GET", "/items"), LambdaContext(remaining_ms=1000))
    # THEN the API answers 503 rather than start a query it cannot finish
    assert response["statusCode"] == 503 and json.loads(response["body"])["error"] == "out_of_time"


def test_cors_preflight_is_answered_for_the_configured_origin_only(api, request_factory):
    # GIVEN browser preflight requests from the configured origin and from another one
    allowed = request_factory("OPTIONS", "/items", **{"access-control-request-method": "POST"})
    other = request_factory("OPTIONS", "/items", origin="https://evil.example",
                            **{"access-control-request-method": "POST"})
    # WHEN they are handled
    allowed_response = api.handler(allowed, LambdaContext())
    other_response = api.handler(other, LambdaContext())
    # THEN only the configured origin is allowed, and neither reaches the database routes
    assert allowed_response["statusCode"] == 204
    assert allowed_response["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in other_response.get("headers", {})

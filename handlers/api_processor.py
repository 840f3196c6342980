"""api-processor: a small JSON API over PostgreSQL, for HTTP API (payload 2.0) and Function URL events.

Routes (Powertools event handler): ``GET /health``, ``GET /items`` (keyset pagination with
``limit`` and ``next_token``), ``POST /items``, ``GET /items/{id}``, ``PUT /items/{id}``.
Errors map through :func:`common.errors.to_http`: a bad body is a 400 with a message, a missing
item a 404, a database outage a 503; bodies never carry a stack trace. CORS headers are only sent
to ``CORS_ALLOW_ORIGIN``. The caller identity comes from the authorizer context. The schema is
migrated idempotently by the first query of each execution environment (``common.db``).
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response, content_types

from common import config, db, events, limits, runtime
from common import tracer as tracing
from common.errors import Conflict, HandlerError, InvalidEvent, NotFound, OutOfTime, PayloadTooLarge, ValidationError, to_http
from common.logger import correlation_paths, logger
from common.metrics import count, metrics

CONFIG = config.load("api-processor")
# Only pg8000: the API's one AWS call is a GetSecretValue per execution environment, and
# patching botocore would load it (and its model machinery) at INIT for that.
tracer = tracing.create(patch_modules=("pg8000",))
MAX_BODY_BYTES = limits.API_MAX_BODY_BYTES
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
_FIELDS = {"name": str, "description": str, "attributes": dict}

app = APIGatewayHttpResolver(
    cors=CORSConfig(allow_origin=CONFIG.cors_allow_origin, max_age=300, expose_headers=["X-Request-Id"]),
)


# --- request helpers ---------------------------------------------------------------------------

def caller_identity(event: dict[str, Any]) -> str:
    """Who is calling: the Lambda authorizer's principal, a JWT sub, an IAM ARN, or 'anonymous'."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    if not isinstance(authorizer, dict):
        return "anonymous"
    lambda_context = authorizer.get("lambda") or {}
    if isinstance(lambda_context, dict) and isinstance(lambda_context.get("principal"), str):
        return lambda_context["principal"]
    jwt = authorizer.get("jwt") or {}
    claims = (jwt.get("claims") or {}) if isinstance(jwt, dict) else {}
    if isinstance(claims, dict) and isinstance(claims.get("sub"), str):
        return claims["sub"]
    iam = authorizer.get("iam") or {}
    if isinstance(iam, dict) and isinstance(iam.get("userArn"), str):
        return iam["userArn"]
    return "anonymous"


def json_body(event: dict[str, Any]) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/413 error saying what is wrong with it."""
    body = event.get("body")
    if body is None or body == "":
        raise ValidationError("request body is required (a JSON object)")
    if not isinstance(body, str):
        raise ValidationError("request body must be a string")
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("request body is not valid base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("request body is not UTF-8") from None
    value = events.loads_strict(text, "request body")
    if not isinstance(value, dict):
        raise ValidationError("request body must be a JSON object")
    return value


def validate_item(body: dict[str, Any], partial: bool) -> dict[str, Any]:
    """The item fields of a create (``partial=False``) or update body, checked; 400 when wrong."""
    unknown = sorted(set(body) - set(_FIELDS) - {"version"})
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    fields: dict[str, Any] = {}
    for name, kind in _FIELDS.items():
        if name not in body:
            continue
        if not isinstance(body[name], kind):
            raise ValidationError(f"field {name!r} must be a {kind.__name__}", field=name)
        events.check_storable(body[name], f"field {name!r}")
        fields[name] = body[name]
    if "name" in fields:
        # Stored stripped on update as on create: the column's length check applies to what is stored.
        fields["name"] = fields["name"].strip()
    if not partial and "name" not in fields:
        raise ValidationError("field 'name' is required", field="name")
    if "name" in fields and not 1 <= len(fields["name"]) <= 200:
        raise ValidationError("field 'name' must have 1 to 200 characters", field="name")
    if len(fields.get("description", "")) > 2000:
        raise ValidationError("field 'description' must have at most 2000 characters", field="description")
    if partial and not fields:
        raise ValidationError("nothing to update: send name, description or attributes")
    version = body.get("version")
    # The column is an INTEGER: a larger number cannot match, and PostgreSQL refuses to compare it.
    if "version" in body and (isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31):
        raise ValidationError("field 'version' must be an integer from 1 to 2147483647", field="version")
    return fields


def _ascii_number(raw: str, max_digits: int) -> int | None:
    """``raw`` as an int when it is 1 to ``max_digits`` ASCII digits, else None.

    ``str.isdigit`` alone also accepts digits such as '²' or '١', which ``int()`` refuses or
    reads as another number.
    """
    if not raw.isascii() or not raw.isdigit() or len(raw) > max_digits:
        return None
    return int(raw)


def _item_id(raw: str) -> int:
    identifier = _ascii_number(raw, 18)   # 18 digits always fit the BIGINT column
    if identifier is None:
        raise NotFound(f"item {raw[:40]!r} not found")
    return identifier


def _page_args(query: dict[str, str]) -> tuple[int, int]:
    limit = _ascii_number(query.get("limit", str(DEFAULT_PAGE_SIZE)), 3)
    if limit is None or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}", field="limit")
    after_id: int | None = 0
    token = query.get("next_token")
    if token:
        try:
            after_id = _ascii_number(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii"), 18)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            after_id = None
        if after_id is None:
            raise ValidationError("next_token is not one this API issued", field="next_token")
    return limit, after_id


_COLUMNS = "id, name, description, attributes, created_by, updated_by, version, created_at, updated_at"


def _row(row: list[Any]) -> dict[str, Any]:
    keys = [column.strip() for column in _COLUMNS.split(",")]
    item = dict(zip(keys, row, strict=True))
    for stamp in ("created_at", "updated_at"):
        item[stamp] = item[stamp].isoformat()
    if isinstance(item["attributes"], str):
        item["attributes"] = json.loads(item["attributes"])
    return item


def _guard_time() -> None:
    runtime.ensure_time(app.lambda_context, CONFIG.safety_margin_ms, "the database query")


# --- routes ------------------------------------------------------------------------------------

@app.get("/health")
def health() -> dict[str, Any]:
    db.database().run("SELECT 1")
    return {"status": "ok", "database": "ok", "schema_version": db.SCHEMA_VERSION}


@app.get("/items")
@tracer.capture_method
def list_items() -> dict[str, Any]:
    limit, after_id = _page_args(app.current_event.query_string_parameters or {})
    _guard_time()
    rows = db.database().run(f"SELECT {_COLUMNS} FROM items WHERE id > :after ORDER BY id LIMIT :limit",
                             after=after_id, limit=limit + 1)
    items = [_row(row) for row in rows[:limit]]
    next_token = None
    if len(rows) > limit:
        next_token = base64.urlsafe_b64encode(str(items[-1]["id"]).encode()).decode().rstrip("=")
    return {"items": items, "next_token": next_token}


@app.post("/items")
@tracer.capture_method
def create_item() -> Response:
    fields = validate_item(json_body(app.current_event.raw_event), partial=False)
    caller = caller_identity(app.current_event.raw_event)
    _guard_time()
    rows = db.database().run(
        f"""INSERT INTO items (name, description, attributes, created_by, updated_by)
            VALUES (:name, :description, CAST(:attributes AS jsonb), :caller, :caller) RETURNING {_COLUMNS}""",
        name=fields["name"].strip(), description=fields.get("description", ""),
        attributes=json.dumps(fields.get("attributes", {})), caller=caller)
    item = _row(rows[0])
    count("ItemCreated")
    logger.info("item created", extra={"item_id": item["id"], "caller": caller})
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=item,
                    headers={"Location": f"/items/{item['id']}"})


@app.get("/items/<item_id>")
@tracer.capture_method
def get_item(item_id: str) -> dict[str, Any]:
    _guard_time()
    rows = db.database().run(f"SELECT {_COLUMNS} FROM items WHERE id = :id", id=_item_id(item_id))
    if not rows:
        raise NotFound(f"item {item_id} not found")
    return _row(rows[0])


@app.put("/items/<item_id>")
@tracer.capture_method
def update_item(item_id: str) -> dict[str, Any]:
    body = json_body(app.current_event.raw_event)
    fields = validate_item(body, partial=True)
    identifier = _item_id(item_id)
    caller = caller_identity(app.current_event.raw_event)
    _guard_time()
    assignments = ", ".join(
        f"{name} = CAST(:{name} AS jsonb)" if name == "attributes" else f"{name} = :{name}" for name in fields)
    params = {name: json.dumps(value) if name == "attributes" else value for name, value in fields.items()}
    version_check = " AND version = :expected" if "version" in body else ""
    if version_check:
        params["expected"] = body["version"]
    rows = db.database().run(
        f"""UPDATE items SET {assignments}, updated_by = :caller, version = version + 1, updated_at = now()
            WHERE id = :id{version_check} RETURNING {_COLUMNS}""",
        id=identifier, caller=caller, **params)
    if not rows:
        if version_check and db.database().run("SELECT 1 FROM items WHERE id = :id", id=identifier):
            raise Conflict(f"item {identifier} has changed; fetch it and retry with its current version")
        raise NotFound(f"item {item_id} not found")
    count("ItemUpdated")
    return _row(rows[0])


# --- errors ------------------------------------------------------------------------------------

def _error_response(error: BaseException) -> Response:
    status, body = to_http(error)
    body["request_id"] = getattr(app.lambda_context, "aws_request_id", None)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(HandlerError)
def handle_known_error(error: HandlerError) -> Response:
    if error.status_code >= 500 or isinstance(error, OutOfTime):
        logger.warning("request failed on a dependency", extra={"error": error.code, "detail": error.message})
        count("DependencyFailure")
    else:
        logger.info("request rejected", extra={"error": error.code, "detail": error.message})
    return _error_response(error)


@app.exception_handler(Exception)
def handle_unexpected_error(error: Exception) -> Response:
    logger.exception("unexpected error")  # the trace goes to the log, never to the caller
    count("UnexpectedError")
    return _error_response(error)


@app.not_found
def handle_not_found(_: Exception) -> Response:
    return _error_response(NotFound(f"no route for {app.current_event.http_method} {app.current_event.path}"))


_STRING_MAPS = ("headers", "queryStringParameters", "pathParameters", "stageVariables")


def http_event(event: Any) -> dict[str, Any]:
    """The request as Powertools reads it: an HTTP API (payload 2.0) or Function URL event, normalised.

    Function URL events may come without ``requestContext.stage`` and ``routeKey`` (aws-lambda-go's
    ``lambda-urls-request.json`` has neither), and Powertools indexes them directly: a Function URL
    has one stage and one route, so both become ``$default``. Every other field Powertools reads
    is type-checked here, so a malformed event is a 400 ``invalid_event`` rather than an exception
    inside ``app.resolve``, where no exception handler sees it. Returns a copy; ``event`` is unchanged.
    """
    if not isinstance(event, dict) or event.get("version") != "2.0":
        raise InvalidEvent("not an HTTP API (payload 2.0) or Function URL event")
    if event.get("type") == "REQUEST" or "routeArn" in event:
        raise InvalidEvent("a Lambda authorizer event, not a request to serve")
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    if not isinstance(http, dict) or not isinstance(http.get("method"), str) or not isinstance(event.get("rawPath"), str):
        raise InvalidEvent("not an HTTP API (payload 2.0) or Function URL event: "
                           "requestContext.http.method and rawPath are required")
    request = dict(event)
    request["requestContext"] = context = dict(context)
    for name in ("stage", "routeKey"):
        context.setdefault(name, "$default")
        if not isinstance(context[name], str):
            raise InvalidEvent(f"requestContext.{name} must be a string")
    for name, default in (("routeKey", "$default"), ("rawQueryString", "")):
        if request.get(name) is None:
            request[name] = default
        elif not isinstance(request[name], str):
            raise InvalidEvent(f"{name} must be a string")
    for name in _STRING_MAPS:
        value = request.get(name)
        if value is not None and not (isinstance(value, dict) and all(
                isinstance(key, str) and isinstance(item, str) for key, item in value.items())):
            raise InvalidEvent(f"{name} must be an object of strings")
    request["headers"] = request.get("headers") or {}
    cookies = request.get("cookies")
    if cookies is not None and not (isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)):
        raise InvalidEvent("cookies must be a list of strings")
    if request.get("body") is not None and not isinstance(request["body"], str):
        raise InvalidEvent("body must be a string")
    request["isBase64Encoded"] = request.get("isBase64Encoded", False)
    if not isinstance(request["isBase64Encoded"], bool):
        raise InvalidEvent("isBase64Encoded must be a boolean")
    if context.get("authorizer") is not None and not isinstance(context["authorizer"], dict):
        raise InvalidEvent("requestContext.authorizer must be an object")
    return request


def _invalid_event_response(event: Any, error: InvalidEvent) -> dict[str, Any]:
    logger.warning("invalid event", extra={"error": error.code, "detail": error.message,
                                           "event_type": type(event).__name__,
                                           "keys": sorted(map(str, event))[:10] if isinstance(event, dict) else None})
    count("InvalidEvent")
    status, body = to_http(error)
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body),
            "isBase64Encoded": False}


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for HTTP API and Function URL events."""
    try:
        request = http_event(event)
    except InvalidEvent as error:
        return _invalid_event_response(event, error)
    logger.append_keys(caller=caller_identity(request))
    try:
        return app.resolve(request, context)
    except Exception:  # noqa: BLE001 - Powertools failed outside any route: answer 500 without a trace
        logger.exception("unexpected error outside the routes")
        count("UnexpectedError")
        status, body = to_http(RuntimeError())
        body["request_id"] = getattr(context, "aws_request_id", None)
        return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body),
                "isBase64Encoded": False}

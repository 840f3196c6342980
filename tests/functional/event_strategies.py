"""Hypothesis strategies for every event type the stack's handlers receive, and the fuzz profiles.

Each event strategy builds an event of AWS's documented shape (the same shapes as the fixtures in
``events/real``) and fills it with hostile values: unicode of every plane, lone surrogates, NUL,
CR/LF, very long and very deep values, numbers JSON readers choke on. Then, with some probability,
``mutated`` damages the shape: keys removed, keys added, values replaced by JSON of another type.
Bodies come valid, invalid (truncated, not JSON, NaN, wrong types, missing fields), huge, deeply
nested, not UTF-8 (lone surrogates stand for undecodable bytes, as in a ``surrogateescape`` str),
and base64 (valid or not) where the event says ``isBase64Encoded``.

Profiles (``HYPOTHESIS_PROFILE``): ``default`` is derandomized and database-less, so every CI run
tries the same examples; ``nightly`` draws many more, fresh random ones; ``dev`` draws a few fresh
ones, for a quick loop while changing a handler.

Strategies are built once, at import or through ``functools.cache``: building one inside a draw
costs more than drawing from it (hypothesis's strategy cache thrashes), which once made generation
ten times slower than the handlers under test.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import string
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# --- profiles -----------------------------------------------------------------------------------

#: Examples per handler in each profile (the SQS fuzz through the sandbox runs a tenth of these).
EXAMPLES = {"default": 1000, "nightly": 20_000, "dev": 100}
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
           HealthCheck.filter_too_much, HealthCheck.large_base_example]
settings.register_profile("default", max_examples=EXAMPLES["default"], deadline=None, derandomize=True,
                          database=None, print_blob=True, suppress_health_check=_HEALTH)
settings.register_profile("nightly", max_examples=EXAMPLES["nightly"], deadline=None, derandomize=False,
                          database=None, print_blob=True, suppress_health_check=_HEALTH)
settings.register_profile("dev", max_examples=EXAMPLES["dev"], deadline=None, derandomize=False,
                          database=None, print_blob=True, suppress_health_check=_HEALTH)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)


def examples(fraction: float = 1.0) -> int:
    """How many examples a fuzz test runs in the active profile (``fraction`` of the handler budget)."""
    return max(1, int(EXAMPLES.get(PROFILE, EXAMPLES["default"]) * fraction))


# --- building blocks -----------------------------------------------------------------------------

BOOL = st.booleans()
UNIT = st.floats(0, 1)


@functools.cache
def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.cache
def _sampled(values: tuple) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


def one(*values: Any) -> st.SearchStrategy[Any]:
    """``sampled_from(values)``, built once per tuple of (hashable) values."""
    return _sampled(values)


def deep(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    """A value nested ``depth`` levels deep (built iteratively, so any depth is fine)."""
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def deep_json_text(depth: int) -> str:
    """JSON text nested ``depth`` levels deep, without building the value."""
    return "[" * depth + "1" + "]" * depth


# --- hostile values -------------------------------------------------------------------------------

HOSTILE_STRINGS = (
    "", " ", "\t", "\x00", "a\x00b", "\r\n", "line1\nline2", "\ud800", "\udcff", "x\udfffy", "\ufeff", "\u202e",
    "\ufffd", "😀", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "日本語", "é", "e\u0301", "١٢٣", "²", "９", "0", "-1", "1e309", "NaN", "null",
    "true", "[]", "{}", "' OR 1=1 --", "\"; DROP TABLE items; --", "${jndi:ldap://x}", "<script>", "%00", "%ZZ",
    "%C3%28", "+", "../../etc/passwd", "/", "//", "\\", "$default", "Bearer", "a" * 300, "é" * 5000,
)
HOSTILE_NUMBERS = (0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 10**400, 0.1, -0.0, 1e308, 5e-324, float("inf"),
                   float("-inf"), float("nan"))
_ANY_CHARACTER = st.one_of(st.characters(), st.characters(categories=["Cs"]))   # lone surrogates too
_UTF8_NO_NUL = st.characters(codec="utf-8", exclude_characters="\x00")
_HUGE_TEXT = st.builds(lambda ch, n: ch * n, one("a", "é", "😀", "\x00", "["), ints(1_000, 70_000))


@functools.cache
def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Strings worth feeding a parser: listed nasties, any unicode, surrogates, the odd huge one."""
    return st.one_of(_sampled(HOSTILE_STRINGS), st.text(max_size=max_size), st.text(_ANY_CHARACTER, max_size=max_size),
                     _HUGE_TEXT)


@functools.cache
def plain_text(min_size: int = 1, max_size: int = 30) -> st.SearchStrategy[str]:
    """Letters, digits and -_. (names that must be well-formed)."""
    return st.text(string.ascii_letters + string.digits + "-_.", min_size=min_size, max_size=max_size)


JSON_SCALARS = st.one_of(st.none(), BOOL, st.integers(), _sampled(HOSTILE_NUMBERS),
                         st.floats(allow_nan=False, allow_infinity=False), hostile_text(20))
SMALL_JSON = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@functools.cache
def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value (and, through Python, the NaN/Infinity that ``json.loads`` lets in)."""
    return st.recursive(JSON_SCALARS, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text(12), children, max_size=4)), max_leaves=max_leaves)


_STORABLE_TEXT = st.text(_UTF8_NO_NUL, max_size=20)
_STORABLE_SCALARS = st.one_of(st.none(), BOOL, st.integers(-(10**30), 10**30),
                              st.floats(allow_nan=False, allow_infinity=False), _STORABLE_TEXT)
#: Payload objects PostgreSQL can store: no NUL, no lone surrogates, finite numbers, not too deep.
STORABLE_PAYLOADS = st.one_of(
    st.dictionaries(_STORABLE_TEXT, st.recursive(_STORABLE_SCALARS, lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_STORABLE_TEXT, children, max_size=3)), max_leaves=8), max_size=5),
    ints(1, 60).map(lambda n: {"nested": deep(n, kind="dict")}))


# --- shape damage ---------------------------------------------------------------------------------

def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, prefix + (key,)))
    elif isinstance(value, list):
        for index, child in enumerate(value[:5]):
            found.extend(_paths(child, prefix + (index,)))
    return found


_OPERATIONS = one("remove", "replace", "replace", "add")


@st.composite
def mutated(draw: Callable, base: st.SearchStrategy[Any], rate: float = 0.3) -> Any:
    """``base`` values, ``rate`` of them damaged: keys removed or added, values replaced by other JSON."""
    value = draw(base)
    if draw(UNIT) >= rate:
        return value
    value = json.loads(json.dumps(value))   # an own copy (values are JSON-compatible here)
    for _ in range(draw(ints(1, 3))):
        paths = _paths(value)
        if not paths:
            break
        path = paths[draw(ints(0, len(paths) - 1))]
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        operation = draw(_OPERATIONS)
        if operation == "remove":
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, list) and len(parent) > path[-1]:
                parent.pop(path[-1])
        elif operation == "replace":
            parent[path[-1]] = draw(json_values(4))
        elif isinstance(parent, dict):
            parent[draw(hostile_text(12))] = draw(json_values(4))
    return value


#: Real SQS/SNS ids are UUIDs; a few are hostile (short: an id is copied into logs and summaries).
MESSAGE_IDS = st.one_of(st.uuids().map(str), st.uuids().map(str), st.uuids().map(str),
                        one(*(text for text in HOSTILE_STRINGS if text and len(text) < 400)),
                        st.text(_ANY_CHARACTER, min_size=1, max_size=20))


# --- SQS (data-processor) -------------------------------------------------------------------------

KINDS = ("order.created", "stock:adjusted", "a", "A9._:-x", "x" * 64)
BAD_KINDS = st.one_of(one("", "x" * 65, ".leading-dot", "has space", "order.created\n", "ünïcode", 5, None),
                      st.just(["a"]), st.just({"k": 1}))
MAX_SQS_BYTES = 256 * 1024
_BUSINESS_KEYS = st.one_of(one("order-1", "order-2", "k"), st.text(_UTF8_NO_NUL, min_size=1, max_size=200))
_BAD_BUSINESS_KEYS = st.one_of(one("", "b" * 201, 7, "a\x00b", "\ud800"), st.just(["k"]))
_DEFECTS = one(*(("none",) * 6 + (
    "kind", "business_key", "payload", "missing", "not_object", "not_json", "truncated", "nan", "nul",
    "surrogate_escape", "surrogate_text", "too_deep", "recursion", "oversized", "big_int", "not_string", "bom")))
_ENCODINGS = one("compact", "ascii", "indent", "spaced")


def _encode(message: Any, draw: Callable) -> str:
    style = draw(_ENCODINGS)
    if style == "compact":
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    if style == "ascii":
        return json.dumps(message)
    if style == "indent":
        return json.dumps(message, indent=2, ensure_ascii=False)
    return "  \n" + json.dumps(message, ensure_ascii=False) + "\n\t"


@st.composite
def data_message_bodies(draw: Callable) -> Any:
    """A data-processor message body: mostly valid with hostile values, else broken in one way."""
    message: dict[str, Any] = {"kind": draw(one(*KINDS)), "payload": draw(STORABLE_PAYLOADS)}
    if draw(BOOL):
        message["business_key"] = draw(_BUSINESS_KEYS)
    if draw(ints(0, 3)) == 0:
        message[draw(one("extra", "Kind", "__proto__"))] = draw(json_values(4))
    defect = draw(_DEFECTS)
    if defect == "kind":
        message["kind"] = draw(BAD_KINDS)
    elif defect == "business_key":
        message["business_key"] = draw(_BAD_BUSINESS_KEYS)
    elif defect == "payload":
        message["payload"] = draw(JSON_SCALARS)
    elif defect == "missing":
        message.pop(draw(one("kind", "payload")))
    elif defect == "not_object":
        return json.dumps(draw(SMALL_JSON.filter(lambda v: not isinstance(v, dict))))
    elif defect == "not_json":
        return draw(one("{not json", "kind=order", "", " ", "{'kind': 'x'}", "[1,]", "\x00"))
    elif defect == "truncated":
        text = _encode(message, draw)
        return text[: draw(ints(0, max(0, len(text) - 1)))]
    elif defect == "nan":
        return json.dumps(message)[:-1] + ', "n": ' + draw(one("NaN", "Infinity", "-Infinity")) + "}"
    elif defect == "nul":
        message["payload"]["s\x00"] = "v"
        message["payload"]["t"] = "a\x00b"
    elif defect == "surrogate_escape":
        return json.dumps(message)[:-1] + ', "s": "' + draw(one("\\ud800", "\\udfff", "\\udc80x")) + '"}'
    elif defect == "surrogate_text":
        return _encode(message, draw) + draw(one("\udcff", "\ud800"))
    elif defect == "too_deep":
        message["payload"] = {"deep": deep(draw(ints(64, 400)))}
    elif defect == "recursion":
        return '{"kind": "x", "payload": {"d": ' + deep_json_text(draw(ints(1_000, 50_000))) + "}}"
    elif defect == "oversized":
        message["payload"]["blob"] = "y" * draw(ints(MAX_SQS_BYTES, MAX_SQS_BYTES + 10_000))
    elif defect == "big_int":
        return '{"kind": "x", "payload": {"n": ' + "9" * draw(ints(4_301, 6_000)) + "}}"
    elif defect == "not_string":
        return draw(SMALL_JSON.filter(lambda v: not isinstance(v, str)))
    elif defect == "bom":
        return "\ufeff" + _encode(message, draw)
    return _encode(message, draw)


def sqs_record(body: Any, message_id: str | None = None, source_arn: str = "arn:aws:sqs:us-east-1:123456789012:lwb-test-tasks",
               attributes: dict | None = None) -> dict[str, Any]:
    """An SQS record as Lambda's event source mapping delivers it."""
    return {"messageId": message_id or str(uuid.uuid4()), "receiptHandle": "AQEB" + uuid.uuid4().hex, "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1770127500000",
                           "SenderId": "AIDAEXAMPLEUSER00001", "ApproximateFirstReceiveTimestamp": "1770127500010"},
            "messageAttributes": attributes or {}, "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs", "eventSourceARN": source_arn, "awsRegion": "us-east-1"}


MESSAGE_ATTRIBUTES = st.one_of(st.just({}), st.just({}), st.dictionaries(plain_text(1, 10), st.builds(
    lambda value, kind: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": kind},
    hostile_text(20), one("String", "Number")), max_size=3))
_BATCH_DAMAGE = one(*(("none",) * 8 + ("empty", "records_type", "record_type", "no_id", "source", "mutate")))


@st.composite
def sqs_events(draw: Callable, bodies: st.SearchStrategy[Any], max_records: int = 4) -> dict[str, Any]:
    """SQS batches of ``bodies``; ids sometimes repeat; the shape is sometimes damaged."""
    count = draw(ints(1, max_records))
    ids = [draw(MESSAGE_IDS) for _ in range(count)]
    if count > 1 and draw(ints(0, 9)) == 0:
        ids[-1] = ids[0]                                  # a duplicated message id
    event = {"Records": [sqs_record(draw(bodies), message_id, attributes=draw(MESSAGE_ATTRIBUTES)) for message_id in ids]}
    damage = draw(_BATCH_DAMAGE)
    if damage == "empty":
        event["Records"] = []
    elif damage == "records_type":
        event["Records"] = draw(SMALL_JSON.filter(lambda v: not isinstance(v, list)))
    elif damage == "record_type":
        event["Records"][draw(ints(0, count - 1))] = draw(JSON_SCALARS)
    elif damage == "no_id":
        event["Records"][draw(ints(0, count - 1))]["messageId"] = draw(one(None, "", 5))
    elif damage == "source":
        event["Records"][draw(ints(0, count - 1))]["eventSource"] = draw(one("aws:sns", "aws:s3", None, "AWS:SQS"))
    elif damage == "mutate":
        event = draw(mutated(st.just(event), rate=1.0))
    return event


# --- SNS and SNS via SQS (notification-handler) ---------------------------------------------------

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:lwb-test-notifications"


def sns_envelope(message: Any, message_id: str, subject: Any = None, attributes: dict | None = None,
                 type_: Any = "Notification") -> dict[str, Any]:
    envelope = {"Type": type_, "MessageId": message_id, "TopicArn": TOPIC_ARN, "Subject": subject, "Message": message,
                "Timestamp": "2026-02-03T14:30:00.000Z", "SignatureVersion": "1", "Signature": "EXAMPLE==",
                "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
                "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}
    if attributes:
        envelope["MessageAttributes"] = attributes
    return envelope


_SNS_MESSAGE_KINDS = one("json", "json", "text", "hostile", "deep", "nan", "not_string", "oversized")
_FINITE_JSON = json_values(8).filter(lambda v: v == v)


@st.composite
def sns_messages(draw: Callable) -> Any:
    """The ``Message`` of an SNS notification: JSON text, plain text, hostile text or not a string."""
    kind = draw(_SNS_MESSAGE_KINDS)
    if kind == "json":
        return json.dumps(draw(_FINITE_JSON), ensure_ascii=draw(BOOL), default=str)
    if kind == "text":
        return draw(st.text(max_size=60))
    if kind == "hostile":
        return draw(hostile_text(60))
    if kind == "deep":
        return deep_json_text(draw(one(10, 63, 64, 900, 2_000, 20_000)))
    if kind == "nan":
        return '{"x": NaN}'
    if kind == "oversized":
        return "z" * draw(ints(MAX_SQS_BYTES - 10, MAX_SQS_BYTES + 10))
    return draw(SMALL_JSON.filter(lambda v: not isinstance(v, str)))


_SNS_ATTRIBUTES = st.one_of(st.none(), st.just({"kind": {"Type": "String", "Value": "batch-summary"}}))
_SNS_TYPES = one(*(("Notification",) * 8 + ("SubscriptionConfirmation", None, 3)))
_SUBJECTS = st.one_of(st.none(), hostile_text(20))


@st.composite
def sns_envelopes(draw: Callable) -> dict[str, Any]:
    return sns_envelope(draw(sns_messages()), draw(MESSAGE_IDS), draw(_SUBJECTS), draw(_SNS_ATTRIBUTES), draw(_SNS_TYPES))


_SQS_SNS_KINDS = one(*(("envelope",) * 5 + ("raw", "raw_text", "broken", "surrogate", "not_string", "mutated")))


@st.composite
def sns_via_sqs_bodies(draw: Callable) -> Any:
    """An SQS body from an SNS subscription: an envelope (pretty-printed as SNS does), or a raw message."""
    kind = draw(_SQS_SNS_KINDS)
    if kind == "envelope":
        return json.dumps(draw(sns_envelopes()), indent=2, separators=(",", " : "), ensure_ascii=draw(BOOL))
    if kind == "raw":
        return json.dumps(draw(_FINITE_JSON), default=str)
    if kind == "raw_text":
        return draw(hostile_text(40))
    if kind == "broken":
        return json.dumps(draw(sns_envelopes()))[: draw(ints(0, 40))]
    if kind == "surrogate":
        return json.dumps(draw(sns_envelopes())) + "\udcff"
    if kind == "mutated":
        return json.dumps(draw(mutated(sns_envelopes(), rate=1.0)), default=str)
    return draw(st.one_of(st.none(), st.integers()))


@st.composite
def sns_events(draw: Callable) -> dict[str, Any]:
    """Direct SNS events: one record (as Lambda sends), sometimes more, sometimes damaged."""
    records = [{"EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": TOPIC_ARN + ":4f9c2d1e-8b7a-4c3d-9e2f-1a0b9c8d7e6f",
                "Sns": draw(_SNS_RECORD_BODIES)} for _ in range(draw(one(1, 1, 1, 2)))]
    return draw(mutated(st.just({"Records": records}), rate=0.2))


_SNS_RECORD_BODIES = st.one_of(sns_envelopes(), sns_envelopes(), mutated(sns_envelopes(), rate=1.0), JSON_SCALARS)


# --- HTTP API v2 and Function URL (api-processor), authorizer (auth-handler) ----------------------

ROUTES = (("GET", "/health"), ("GET", "/items"), ("POST", "/items"), ("GET", "/items/{id}"), ("PUT", "/items/{id}"),
          ("DELETE", "/items/{id}"), ("OPTIONS", "/items"), ("GET", "/nowhere"), ("PATCH", "/items"))
_ITEM_TEXT = st.text(_UTF8_NO_NUL, max_size=60)
_NAMES = st.one_of(_ITEM_TEXT.filter(lambda s: s.strip()), hostile_text(30),
                   st.builds(lambda n: "a" + " " * n, ints(190, 260)))
_DESCRIPTIONS = st.one_of(_ITEM_TEXT, hostile_text(30))
_ATTRIBUTES = st.one_of(STORABLE_PAYLOADS, st.dictionaries(hostile_text(8), json_values(4), max_size=3),
                        ints(60, 80).map(lambda n: deep(n, kind="dict")))
_VERSIONS = st.one_of(st.integers(), _sampled(HOSTILE_NUMBERS), hostile_text(5), BOOL)


@st.composite
def item_bodies(draw: Callable) -> dict[str, Any]:
    """Create/update bodies: valid with hostile values, or wrong in one field."""
    body: dict[str, Any] = {}
    if draw(ints(0, 4)):
        body["name"] = draw(_NAMES)
    if draw(BOOL):
        body["description"] = draw(_DESCRIPTIONS)
    if draw(BOOL):
        body["attributes"] = draw(_ATTRIBUTES)
    if draw(ints(0, 5)) == 0:
        body["version"] = draw(_VERSIONS)
    if draw(ints(0, 7)) == 0:
        body[draw(hostile_text(8))] = draw(json_values(3))
    return body


_BODY_KINDS = one(*(("item",) * 5 + ("none", "hostile", "deep", "nan", "big_int", "huge", "not_string",
                                     "base64_item", "base64_bad", "base64_not_utf8", "surrogate_escape")))


@st.composite
def http_bodies(draw: Callable) -> tuple[Any, bool]:
    """(body, isBase64Encoded) for a request."""
    kind = draw(_BODY_KINDS)
    if kind == "item":
        return json.dumps(draw(item_bodies()), ensure_ascii=draw(BOOL)), False
    if kind == "none":
        return draw(one(None, "")), False
    if kind == "hostile":
        return draw(hostile_text(60)), False
    if kind == "deep":
        return '{"name": "x", "attributes": {"d": ' + deep_json_text(draw(one(70, 999, 5_000, 30_000))) + "}}", False
    if kind == "nan":
        return '{"name": "x", "attributes": {"n": ' + draw(one("NaN", "Infinity", "1e999")) + "}}", False
    if kind == "big_int":
        return '{"name": "x", "version": ' + "9" * draw(one(19, 40, 4_301, 5_000)) + "}", False
    if kind == "huge":
        return json.dumps({"name": "x", "description": "y" * draw(ints(60_000, 100_000))}), False
    if kind == "not_string":
        return draw(SMALL_JSON.filter(lambda v: v is not None and not isinstance(v, str))), False
    if kind == "base64_item":
        return base64.b64encode(json.dumps(draw(item_bodies())).encode()).decode(), True
    if kind == "base64_bad":
        return draw(one("not base64!!", "QQ", "====", "\u00e9\u00e9\u00e9\u00e9", "QUJD\n")), True
    if kind == "base64_not_utf8":
        return base64.b64encode(b'{"name": "\xff\xfe"}').decode(), True
    return '{"name": "' + draw(one("\\u0000", "\\ud800", "\\udfff", "a\\u0000b")) + '"}', False


_ITEM_IDS = st.one_of(ints(1, 50).map(str), one("0", "١٢", "²", "9" * 19, "99999999999999999999", "-1", "abc", "1.5",
                                                "%20", "😀"))
_LIMITS = st.one_of(ints(-5, 150).map(str), one("", "²", "١", "0" * 5_000, "1e2"))
_NEXT_TOKENS = st.one_of(
    st.integers(0, 10**22).map(lambda n: base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")),
    one("", "!!", "é", "LTE", "MS4w", "wq8"), hostile_text(10))


@st.composite
def query_parameters(draw: Callable) -> dict[str, str] | None:
    if draw(BOOL):
        return None
    query = {}
    if draw(BOOL):
        query["limit"] = draw(_LIMITS)
    if draw(BOOL):
        query["next_token"] = draw(_NEXT_TOKENS)
    if draw(ints(0, 3)) == 0:
        query[draw(plain_text(1, 8))] = draw(hostile_text(20))
    return query


_AUTHORIZERS = st.one_of(st.none(), *(st.just(value) for value in (
    {"lambda": {"principal": "user-123"}}, {"jwt": {"claims": {"sub": "0b9f6c1e"}, "scopes": []}},
    {"iam": {"userArn": "arn:aws:iam::123456789012:user/ops"}}, {"jwt": "not an object"}, {"lambda": None},
    {"iam": ["x"]}, {"jwt": {"claims": "x"}})))
_ORIGINS = one("https://app.example.com", "https://evil.example", "null", "é")
_ACCEPTS = one("application/json", "*/*", "text/html,application/json")
_COOKIES = st.lists(one("a=1", "session=x; Path=/", "é=ü", ""), max_size=3)
_OMISSIONS = one("none", "stage", "routeKey", "both")


@st.composite
def http_api_events(draw: Callable, function_url: bool | None = None) -> dict[str, Any]:
    """HTTP API (payload 2.0) or Function URL events for the api-processor's routes."""
    function_url = draw(BOOL) if function_url is None else function_url
    method, route = ROUTES[draw(ints(0, len(ROUTES) - 1))]
    method = draw(one(method, method, method, method.lower(), "TRACE", ""))
    path = route.replace("{id}", draw(_ITEM_IDS)) if "{id}" in route else route
    stage = "$default" if function_url or draw(ints(0, 4)) else "prod"
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    body, encoded = draw(http_bodies())
    query = draw(query_parameters())
    headers = {"content-type": "application/json", "host": "example.lambda-url.us-east-1.on.aws",
               "x-forwarded-proto": "https", "accept": draw(_ACCEPTS)}
    if draw(BOOL):
        headers["origin"] = draw(_ORIGINS)
    if draw(ints(0, 3)) == 0:
        headers[draw(plain_text(1, 10)).lower()] = draw(hostile_text(30))
    authorizer = draw(_AUTHORIZERS)
    context: dict[str, Any] = {"accountId": "123456789012", "apiId": "abcdef1234", "domainName": "example.com",
                               "domainPrefix": "example", "requestId": str(uuid.uuid4()),
                               "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                                        "sourceIp": "198.51.100.1", "userAgent": "fuzz"},
                               "time": "03/Feb/2026:14:05:11 +0000", "timeEpoch": 1770127511000}
    if authorizer is not None:
        context["authorizer"] = json.loads(json.dumps(authorizer))
    event: dict[str, Any] = {"version": "2.0", "rawPath": raw_path,
                             "rawQueryString": urllib.parse.urlencode(query, safe=",", errors="surrogatepass") if query else "",
                             "headers": headers, "requestContext": context, "isBase64Encoded": encoded}
    if body is not None or draw(BOOL):
        event["body"] = body
    if query is not None or draw(BOOL):
        event["queryStringParameters"] = query
    if draw(BOOL):
        event["cookies"] = draw(_COOKIES)
    # Function URLs may omit stage and routeKey (aws-lambda-go's fixture); API Gateway sends both.
    omit = draw(_OMISSIONS) if function_url else "none"
    if omit not in ("stage", "both"):
        context["stage"] = stage
    if omit not in ("routeKey", "both"):
        context["routeKey"] = event["routeKey"] = "$default" if function_url else f"{method} {route}"
    if "{id}" in route and not function_url:
        event["pathParameters"] = {"id": path.rsplit("/", 1)[-1]}
    return draw(mutated(st.just(event), rate=0.15))


_PLACEMENTS = one("both", "both", "identity_source", "header", "Header", "none")
_IDENTITY_SOURCES = st.one_of(st.none(), st.just([]), JSON_SCALARS, st.lists(JSON_SCALARS, max_size=2))


@st.composite
def authorizer_events(draw: Callable, tokens: st.SearchStrategy[str] | None = None) -> dict[str, Any]:
    """HTTP API Lambda authorizer events (REQUEST, payload 2.0) carrying ``tokens``."""
    authorization = draw(tokens if tokens is not None else hostile_text(60))
    placement = draw(_PLACEMENTS)
    headers: dict[str, Any] = {"host": "abcdef1234.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"}
    event: dict[str, Any] = {
        "version": "2.0", "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/$default/GET/items",
        "routeKey": "GET /items", "rawPath": "/items", "rawQueryString": "", "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "abcdef1234", "domainName": "example.com",
                           "http": {"method": "GET", "path": "/items", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.1",
                                    "userAgent": "fuzz"}, "requestId": "id", "routeKey": "GET /items", "stage": "$default"}}
    if placement in ("both", "identity_source"):
        event["identitySource"] = [authorization]
    if placement in ("both", "header"):
        headers["authorization"] = authorization
    if placement == "Header":
        headers["Authorization"] = authorization
    if draw(ints(0, 5)) == 0:
        event["identitySource"] = draw(_IDENTITY_SOURCES)
    return draw(mutated(st.just(event), rate=0.15))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


_JWT_HEADERS = st.one_of(st.just({"alg": "HS256", "typ": "JWT"}), st.just({"alg": "none"}), st.just({"alg": "RS256"}),
                         st.just({"alg": "HS256", "crit": ["exp"]}),
                         st.dictionaries(hostile_text(5), json_values(3), max_size=3))
_JWT_PAYLOADS = st.one_of(st.just({"sub": "x", "exp": 1e999}), st.dictionaries(hostile_text(5), json_values(3), max_size=3))
_JWT_SHAPES = one(*(("jwt",) * 4 + ("deep_header", "deep_payload", "bad_b64", "not_json", "two", "four")))
_SIGNATURES = st.binary(max_size=40)


@st.composite
def hostile_jwts(draw: Callable, deep_segments: bool = True) -> str:
    """Compact-JWS-looking strings with hostile segments (never validly signed).

    ``deep_segments``: include header or payload JSON nested thousands of levels deep.
    """
    segments = [_b64url(json.dumps(draw(_JWT_HEADERS), default=str).encode()),
                _b64url(json.dumps(draw(_JWT_PAYLOADS), default=str).encode()), _b64url(draw(_SIGNATURES))]
    shape = draw(_JWT_SHAPES)
    if shape == "deep_header" and deep_segments:
        segments[0] = _b64url(deep_json_text(draw(ints(1_000, 3_000))).encode())
    elif shape == "deep_payload" and deep_segments:
        segments[1] = _b64url(deep_json_text(draw(ints(1_000, 3_000))).encode())
    elif shape == "bad_b64":
        segments[draw(ints(0, 2))] = draw(one("a", "!!!", "é", "abcde"))
    elif shape == "not_json":
        segments[0] = _b64url(draw(_SIGNATURES))
    elif shape == "two":
        segments.pop()
    elif shape == "four":
        segments.append("x")
    return ".".join(segments)


# --- S3 (file-processor) -----------------------------------------------------------------------

def s3_record(key: str, bucket: str = "lwb-test-uploads", event_name: Any = "ObjectCreated:Put",
              size: Any = 100) -> dict[str, Any]:
    """An S3 notification record; ``key`` is given URL-encoded, as S3 sends it."""
    obj: dict[str, Any] = {"key": key, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0065A0C4F0A1B2C3D4"}
    if size is not None:
        obj["size"] = size
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-02-03T14:40:00.000Z",
            "eventName": event_name, "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "198.51.100.50"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "EXAMPLE"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "file-processor",
                   "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKEXAMPLE"},
                              "arn": f"arn:aws:s3:::{bucket}"}, "object": obj}}


_KEY_KINDS = one(*(("uploaded",) * 6 + ("hostile", "encoded_hostile", "long", "bad_escape", "outside")))
_HOSTILE_KEYS = st.builds(lambda name, suffix: "incoming/" + name + suffix, hostile_text(30), one(".txt", ".png", ".json", ""))
_ENCODED_KEYS = st.builds(lambda name, suffix: urllib.parse.quote_plus("incoming/" + name + suffix, safe="/"),
                          st.text(max_size=20), one(".txt", ".csv", "\n.txt", "\r\n.json", "\x00.png"))
_LONG_KEYS = ints(1_000, 1_100).map(lambda n: "incoming/" + "k" * n + ".txt")
_BAD_ESCAPES = one(*("incoming/" + escape + ".txt" for escape in ("%", "%Z1", "%C3%28", "%ED%A0%80", "%FF")))
_OUTSIDE_KEYS = one(*(urllib.parse.quote_plus(key) for key in ("elsewhere/a.txt", "incoming", "Incoming/a.txt", "/incoming/a.txt")))


@st.composite
def s3_keys(draw: Callable, uploaded: tuple[str, ...]) -> str:
    """URL-encoded keys: uploaded objects (encoded as S3 does), or hostile ones."""
    kind = draw(_KEY_KINDS)
    if kind == "uploaded":
        return urllib.parse.quote_plus(draw(one(*uploaded)), safe="/")
    return draw({"hostile": _HOSTILE_KEYS, "encoded_hostile": _ENCODED_KEYS, "long": _LONG_KEYS,
                 "bad_escape": _BAD_ESCAPES, "outside": _OUTSIDE_KEYS}[kind])


_S3_KINDS = one(*(("direct",) * 6 + ("via_sqs", "via_sqs", "test_event", "test_event_via_sqs", "mutated")))
_BUCKETS = one(*(("lwb-test-uploads",) * 8 + ("lwb-test-processed", "other-bucket", "")))
_EVENT_NAMES = one(*(("ObjectCreated:Put",) * 5 + ("ObjectCreated:Post", "ObjectCreated:Copy",
                                                   "ObjectCreated:CompleteMultipartUpload", "ObjectRemoved:Delete",
                                                   "ObjectRestore:Completed", "", None, 7)))
_SIZES = st.one_of(ints(0, 4_000), one(None, 6 * 1024 * 1024, -1))
_ODD_SIZES = st.one_of(one("12", 1.5, True), st.just([1]))
S3_TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-02-03T14:00:00.000Z",
                 "Bucket": "lwb-test-uploads", "RequestId": "5582815E1AEA5ADF", "HostId": "EXAMPLE"}


@st.composite
def s3_events(draw: Callable, uploaded: tuple[str, ...], max_records: int = 3) -> Any:
    """S3 ObjectCreated events (direct or in SQS bodies), other S3 events, and the s3:TestEvent."""
    kind = draw(_S3_KINDS)
    if kind == "test_event":
        return dict(S3_TEST_EVENT)
    if kind == "test_event_via_sqs":
        return {"Records": [sqs_record(json.dumps(S3_TEST_EVENT))]}
    records = []
    for _ in range(draw(ints(1, max_records))):
        record = s3_record(draw(s3_keys(uploaded)), bucket=draw(_BUCKETS), event_name=draw(_EVENT_NAMES),
                           size=draw(_SIZES))
        if draw(ints(0, 9)) == 0:
            record["s3"]["object"]["size"] = draw(_ODD_SIZES)
        records.append(record)
    event: Any = {"Records": records}
    if kind == "via_sqs":
        event = {"Records": [sqs_record(json.dumps({"Records": [record]})) for record in records]}
    elif kind == "mutated":
        event = draw(mutated(st.just(event), rate=1.0))
    return event


# --- EventBridge (scheduler) ----------------------------------------------------------------------

_SOURCES = one("aws.events", "aws.events", "aws.events", "aws.events", "aws.scheduler", "aws.s3",
               "workbook.file-processor", "", None)
_DETAIL_TYPES = one(*(("Scheduled Event",) * 5 + ("Object Created", "FileProcessed", "scheduled event")))
_DETAILS = st.one_of(st.builds(dict), st.dictionaries(hostile_text(8), json_values(4), max_size=3))
_EXTRAS = one(*(("none",) * 6 + ("huge", "surrogate", "deep", "mutate")))


@st.composite
def scheduled_events(draw: Callable) -> Any:
    """Scheduled Events from a rule or from EventBridge Scheduler, valid or damaged; pattern events too."""
    event: dict[str, Any] = {"version": "0", "id": str(uuid.uuid4()), "detail-type": draw(_DETAIL_TYPES),
                             "source": draw(_SOURCES), "account": "123456789012", "time": "2026-02-03T14:45:00Z",
                             "region": "us-east-1",
                             "resources": ["arn:aws:events:us-east-1:123456789012:rule/lwb-test-due-work"],
                             "detail": draw(_DETAILS)}
    extra = draw(_EXTRAS)
    if extra == "huge":
        event["detail"] = {"blob": "x" * draw(ints(256 * 1024 - 400, 300 * 1024))}
    elif extra == "surrogate":
        event["detail"] = {"s": "\udcff"}
    elif extra == "deep":
        event["detail"] = deep(draw(one(100, 5_000)))
    elif extra == "mutate":
        event = draw(mutated(st.just(event), rate=1.0))
    return event


#: Rows of due work for the scheduler to find: (task_type, payload, seconds until due).
DUE_ROWS = st.lists(st.tuples(st.one_of(one(*KINDS), plain_text(1, 64)), STORABLE_PAYLOADS, one(-60, -1, -1, 3600)),
                    max_size=3)


# --- anything -------------------------------------------------------------------------------------

_ODD_EVENTS = st.one_of(st.none(), st.just({}), st.just([]), one("", "{}", 0), st.just({"Records": None}))


def foreign_events(*strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Events of other types, or any JSON at all: what a misrouted trigger or a person might send."""
    return st.one_of(*strategies, json_values(8), _ODD_EVENTS)


__all__ = [
    "DUE_ROWS", "EXAMPLES", "HOSTILE_STRINGS", "MESSAGE_IDS", "PROFILE", "S3_TEST_EVENT", "authorizer_events",
    "data_message_bodies", "deep", "deep_json_text", "examples", "foreign_events", "hostile_jwts", "hostile_text",
    "http_api_events", "json_values", "mutated", "s3_events", "s3_record", "scheduled_events", "sns_envelope",
    "sns_events", "sns_via_sqs_bodies", "sqs_events", "sqs_record",
]

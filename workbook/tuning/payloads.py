"""Representative invocation payloads per function, in AWS's event shapes, for power tuning.

Each builder returns one event that exercises the function's real work path (not a no-op):
the API lists items through the authorizer context, the data processor gets a full batch, the
file processor gets a freshly uploaded image to resize. Where an event needs a resource (an
uploaded object, a signed token), the builder creates it through ``workbook.aws``.

``tuning_payloads`` adds the function's worst-case probes (``worst_case_payloads``): inputs it
accepts that reach its limits (``handlers/common/limits.py``, through ``workbook.tuning.probes``)
on the axis that drives its memory. Adaptive tuning measures each once at the largest size first,
and the largest peak among them sets the memory floor. Each probe carries a ``check`` of the
function's response, so an input the function refused (a probe past a limit) never passes for
a measured peak.
"""
from __future__ import annotations

import io
import json
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import jwt
from PIL import Image

from infra import config
from workbook import aws
from workbook.deploy.operations import outputs as stack_outputs
from workbook.deploy.plan import offline_plan
from workbook.deploy.stacks import cli_available
from workbook.tuning import probes

ACCOUNT_ID = "123456789012"


def _now() -> datetime:
    return datetime.now(UTC)


def http_api_request(method: str = "GET", path: str = "/items", body: Any = None,
                     principal: str = "power-tuning", origin: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) request that passed the Lambda authorizer."""
    now = _now()
    text = None if body is None else json.dumps(body)
    headers = {"accept": "application/json", "content-type": "application/json",
               "host": "local.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"}
    if origin:
        headers["origin"] = origin
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID, "apiId": "local", "domainName": headers["host"], "domainPrefix": "local",
            "authorizer": {"lambda": {"principal": principal, "scope": "items:read items:write"}},
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "workbook-tuning"},
            "requestId": uuid.uuid4().hex, "routeKey": "$default", "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text, "isBase64Encoded": False,
    }


def sqs_batch(bodies: list[Any], queue_arn: str) -> dict[str, Any]:
    """An SQS event source mapping batch."""
    now_ms = str(int(time.time() * 1000))
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": uuid.uuid4().hex,
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms, "SenderId": "AIDAEXAMPLE",
                       "ApproximateFirstReceiveTimestamp": now_ms},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1",
    } for body in bodies]}


def s3_object_created(bucket: str, key: str, size: int, region: str = "us-east-1") -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification (the key URL-encoded, as S3 sends it)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": _now().strftime("%Y-%m-%dT%H:%M:%S.000Z"), "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:workbook"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "file-processor",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "workbook"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": uuid.uuid4().hex,
                          "sequencer": uuid.uuid4().hex[:18].upper()}},
    }]}


def scheduled_event(rule_arn: str, schedule: str) -> dict[str, Any]:
    """An EventBridge scheduled event with the stack's target input merged in by the scheduler's rule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT_ID, "time": _now().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
            "resources": [rule_arn], "detail": {}, "schedule": schedule}


def sns_via_sqs(messages: list[dict[str, Any]], topic_arn: str, queue_arn: str) -> dict[str, Any]:
    """SNS notifications delivered through an SQS subscription (the envelope in each body)."""
    envelopes = [{"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn,
                  "Subject": "power tuning", "Message": json.dumps(message),
                  "Timestamp": _now().strftime("%Y-%m-%dT%H:%M:%S.000Z"), "SignatureVersion": "1",
                  "Signature": "", "SigningCertURL": "", "UnsubscribeURL": ""} for message in messages]
    return sqs_batch(envelopes, queue_arn)


def authorizer_request(token: str) -> dict[str, Any]:
    """An HTTP API Lambda authorizer request (payload 2.0)."""
    event = http_api_request()
    event["type"] = "REQUEST"
    event["routeArn"] = f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:local/$default/GET/items"
    event["identitySource"] = [f"Bearer {token}"]
    event["headers"]["authorization"] = f"Bearer {token}"
    return event


def _png(width: int = 640, height: int = 480) -> bytes:
    """A 640x480 image with structure: resizing it is real CPU work, short enough for a sweep at 128 MB."""
    image = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _stack_refs(settings: config.Settings) -> dict[str, str]:
    """Names and ARNs the events need: the deployed stack's outputs on AWS, the offline plan locally.

    The local environment is provisioned from the offline plan, so the plan's names are the real
    ones there. On AWS they come from the compute stack's outputs (through the Automation API);
    without the Pulumi CLI the plan's names stand in, which match a stack deployed from the same
    params, and a note says so.
    """
    outputs: dict[str, str] | None = None
    jwt_secret_arn = None
    if not aws.is_local() and settings.env != "local":   # locally the plan's names are the real ones
        if cli_available():
            outputs = stack_outputs(settings)
            jwt_secret_arn = stack_outputs(settings, stack="foundation").get("jwtSecretArn") \
                if settings.params.foundation.standalone else None
        else:
            warnings.warn("workbook.events: the Pulumi CLI is not installed; using the offline plan's resource "
                          "names for the tuning payloads", UserWarning, stacklevel=3)
    if outputs is None or jwt_secret_arn is None:
        plan = offline_plan(settings.env, settings)
        outputs = outputs or plan.outputs
        jwt_secret_arn = jwt_secret_arn or plan.foundation_outputs["jwtSecretArn"]
    return {
        "uploads_bucket": outputs["uploadsBucketName"],
        "task_queue_arn": outputs["taskQueueArn"],
        "notification_queue_arn": outputs["notificationQueueArn"],
        "topic_arn": outputs["notificationsTopicArn"],
        "jwt_secret_arn": jwt_secret_arn,
    }


def _token(settings: config.Settings, secret_arn: str, max_bytes: int | None = None) -> str:
    """A signed token for the stack's authorizer; with ``max_bytes``, padded (a ``pad`` claim) to just under it."""
    # By name: the ARN's random suffix differs between a plan and the account (or the local endpoint).
    name = secret_arn.split(":secret:", 1)[-1].rsplit("-", 1)[0] if ":secret:" in secret_arn else secret_arn
    secret = json.loads(aws.client("secretsmanager", settings.params.aws_region)
                        .get_secret_value(SecretId=name)["SecretString"])
    now = int(time.time())
    claims = {"iss": settings.params.jwt.issuer, "aud": settings.params.jwt.audience, "sub": "power-tuning",
              "iat": now, "nbf": now, "exp": now + 3600, "scope": "items:read"}
    token = jwt.encode(claims, secret["hs256_key"], algorithm="HS256")
    if max_bytes:
        pad = max((max_bytes - len(token) - 32) * 3 // 4, 0)              # base64url: 4 characters per 3 bytes
        while True:
            claims["pad"] = "x" * pad
            token = jwt.encode(claims, secret["hs256_key"], algorithm="HS256")
            if len(token) <= max_bytes or pad == 0:
                break
            pad = max(pad - 16, 0)
    return token


def sample_event(settings: config.Settings, key: str) -> dict[str, Any]:
    """A representative payload for function ``key`` in this environment."""
    refs = _stack_refs(settings)
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "api-processor": lambda: http_api_request("GET", "/items", origin=settings.cors_origin),
        "data-processor": lambda: sqs_batch(
            [{"kind": "tuning.sample", "business_key": f"tune-{uuid.uuid4().hex[:8]}",
              "payload": {"values": list(range(50)), "source": "power-tuning"}}
             for _ in range(settings.params.task_queue.batch_size)], refs["task_queue_arn"]),
        "file-processor": lambda: _uploaded_image_event(settings, refs["uploads_bucket"]),
        "scheduler": lambda: scheduled_event(
            f"arn:aws:events:{settings.params.aws_region}:{ACCOUNT_ID}:rule/{settings.name('schedule-tuning')}",
            "tuning"),
        "notification-handler": lambda: sns_via_sqs(
            [{"event": "power-tuning", "at": _now().isoformat()}], refs["topic_arn"], refs["notification_queue_arn"]),
        "auth-handler": lambda: authorizer_request(_token(settings, refs["jwt_secret_arn"])),
    }
    return builders[key]()


def _uploaded_image_event(settings: config.Settings, bucket: str) -> dict[str, Any]:
    body = _png()
    key = f"{settings.params.uploads.prefix}power tuning/{uuid.uuid4().hex[:8]}.png"
    aws.client("s3", settings.params.aws_region).put_object(Bucket=bucket, Key=key, Body=body)
    return s3_object_created(bucket, key, len(body), settings.params.aws_region)


def tuning_payloads(settings: config.Settings, key: str) -> Any:
    """The payloads power tuning uses for ``key``: its sample event, plus its worst-case probes where it has limits.

    ``[{"payload": sample, "weight": 1.0}, {"payload": probe event, "probe": name, "description": ..., "check": ...}, ...]``;
    the sample event alone for a function whose input has no size axis (the scheduler).
    """
    worst = worst_case_payloads(settings, key)
    sample = sample_event(settings, key)
    return [{"payload": sample, "weight": 1.0}, *worst] if worst else sample


def worst_case_payloads(settings: config.Settings, key: str) -> list[dict[str, Any]]:
    """Function ``key``'s worst-case probes as events: ``{"payload", "probe", "description", "check"}`` each.

    file-processor: every file of ``workbook.tuning.probes.file_probes`` uploaded under the prefix;
    data-processor and notification-handler: a full batch (params batch size) of messages of
    ``SQS_MAX_MESSAGE_BYTES``; api-processor: a POST of ``API_MAX_BODY_BYTES``; auth-handler: a valid
    token of ``jwt.max_token_bytes``; scheduler: none (its event is fixed; its work is the due rows,
    at most MAX_ROUNDS batches).
    """
    if key == "scheduler":
        return []
    limits = probes.input_limits()
    refs = _stack_refs(settings)
    if key == "file-processor":
        return [_uploaded_probe(settings, refs["uploads_bucket"], probe)
                for probe in probes.file_probes(settings.params.uploads.max_object_mb * limits.MiB)]
    if key == "data-processor":
        size = settings.params.task_queue.batch_size
        bodies = [_padded_json({"kind": "tuning.worst-case", "business_key": f"worst-{uuid.uuid4().hex[:8]}-{i}",
                                "payload": {"items": []}}, limits.SQS_MAX_MESSAGE_BYTES) for i in range(size)]
        return [{"payload": sqs_batch(bodies, refs["task_queue_arn"]), "probe": "sqs-batch-max",
                 "description": f"{size} messages (task_queue.batch_size) of {limits.SQS_MAX_MESSAGE_BYTES // 1024} KiB "
                                "(SQS_MAX_MESSAGE_BYTES), payloads of empty objects", "check": _batch_check}]
    if key == "notification-handler":
        size = settings.params.notification_queue.batch_size
        def batch_of(items: int) -> dict[str, Any]:
            return sns_via_sqs([{"event": "worst-case", "items": [{}] * items}] * size, refs["topic_arn"],
                               refs["notification_queue_arn"])
        empty = max(len(r["body"].encode()) for r in batch_of(0)["Records"])
        batch = batch_of((limits.SQS_MAX_MESSAGE_BYTES - empty - 64) // 4)   # "{}, " in the envelope's Message
        return [{"payload": batch, "probe": "sqs-batch-max",
                 "description": f"{size} SNS envelopes (notification_queue.batch_size) near "
                                f"{limits.SQS_MAX_MESSAGE_BYTES // 1024} KiB (SQS_MAX_MESSAGE_BYTES)",
                 "check": _batch_check}]
    if key == "api-processor":
        body = _padded_json({"name": "worst-case probe", "attributes": {"items": []}}, limits.API_MAX_BODY_BYTES)
        event = http_api_request("POST", "/items", origin=settings.cors_origin)
        event["body"] = body
        return [{"payload": event, "probe": "api-body-max",
                 "description": f"POST /items of {limits.API_MAX_BODY_BYTES // 1024} KiB (API_MAX_BODY_BYTES)",
                 "check": _http_check}]
    if key == "auth-handler":
        token = _token(settings, refs["jwt_secret_arn"], max_bytes=settings.params.jwt.max_token_bytes)
        return [{"payload": authorizer_request(token), "probe": "token-max",
                 "description": f"a valid token of {len(token):,} bytes (jwt.max_token_bytes)", "check": _auth_check}]
    return []


def _padded_json(value: dict[str, Any], max_bytes: int) -> str:
    """``value`` as JSON with its ``items`` list (at the top or under ``payload``/``attributes``) filled with ``{}``
    to just under ``max_bytes``: the most parsed objects a byte."""
    target = value.get("payload", value.get("attributes", value))
    text = json.dumps(value, separators=(",", ":"))
    count = max((max_bytes - len(text.encode()) - 16) // 3, 0)
    target["items"] = [{}] * count
    return json.dumps(value, separators=(",", ":"))


def _decoded(response: bytes | None) -> Any:
    try:
        return json.loads(response or b"null")
    except ValueError:
        return None


def _file_check(response: bytes | None) -> str | None:
    results = (_decoded(response) or {}).get("results") or [{}]
    outcome = results[0]
    return None if outcome.get("status") == "processed" else f"{outcome.get('reason')}: {outcome.get('detail')}"


def _batch_check(response: bytes | None) -> str | None:
    failures = (_decoded(response) or {}).get("batchItemFailures")
    return f"{len(failures)} record(s) failed" if failures else None


def _http_check(response: bytes | None) -> str | None:
    answer = _decoded(response) or {}
    status = int(answer.get("statusCode") or 0)
    return None if 200 <= status < 300 else f"HTTP {status}: {str(answer.get('body'))[:200]}"


def _auth_check(response: bytes | None) -> str | None:
    return None if (_decoded(response) or {}).get("isAuthorized") else "the token was denied"


def _uploaded_probe(settings: config.Settings, bucket: str, probe: probes.FileProbe) -> dict[str, Any]:
    body = probe.build()
    key = f"{settings.params.uploads.prefix}power tuning/worst-{probe.name}-{uuid.uuid4().hex[:8]}{probe.suffix}"
    aws.client("s3", settings.params.aws_region).put_object(Bucket=bucket, Key=key, Body=body)
    return {"payload": s3_object_created(bucket, key, len(body), settings.params.aws_region), "probe": probe.name,
            "description": f"{probe.description}; {len(body) / 1e6:,.2f} MB", "check": _file_check}

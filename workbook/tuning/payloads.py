"""Representative invocation payloads per function, in AWS's event shapes, for power tuning.

Each builder returns one event that exercises the function's real work path (not a no-op):
the API lists items through the authorizer context, the data processor gets a full batch, the
file processor gets a freshly uploaded image to resize. Where an event needs a resource (an
uploaded object, a signed token), the builder creates it through ``workbook.aws``.

``tuning_payloads`` adds the worst case where a function's accepted input has a size limit:
the file processor is tuned with weighted payloads, the usual image and, as one in
``LARGEST_PAYLOAD_SHARE``, an image of ``uploads.max_object_mb`` (marked ``largest``: its peak
memory sets the memory floor, and its duration a timeout floor).
"""
from __future__ import annotations

import io
import json
import math
import struct
import time
import uuid
import warnings
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import jwt
import numpy as np
from PIL import Image

from infra import config
from workbook import aws
from workbook.deploy.operations import outputs as stack_outputs
from workbook.deploy.plan import offline_plan
from workbook.deploy.stacks import cli_available

ACCOUNT_ID = "123456789012"
#: The largest payload's weight among the tuning payloads of a function with a size limit (1 in 10).
LARGEST_PAYLOAD_SHARE = 0.1
#: Kept below the size limit so the largest object is accepted, not rejected as oversized, in bytes.
_BELOW_LIMIT_BYTES = 64 * 1024


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


def _token(settings: config.Settings, secret_arn: str) -> str:
    # By name: the ARN's random suffix differs between a plan and the account (or the local endpoint).
    name = secret_arn.split(":secret:", 1)[-1].rsplit("-", 1)[0] if ":secret:" in secret_arn else secret_arn
    secret = json.loads(aws.client("secretsmanager", settings.params.aws_region)
                        .get_secret_value(SecretId=name)["SecretString"])
    now = int(time.time())
    claims = {"iss": settings.params.jwt.issuer, "aud": settings.params.jwt.audience, "sub": "power-tuning",
              "iat": now, "nbf": now, "exp": now + 3600, "scope": "items:read"}
    return jwt.encode(claims, secret["hs256_key"], algorithm="HS256")


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
    """The payloads power tuning uses for ``key``: its sample event, or weighted payloads with the largest accepted.

    The file processor accepts objects up to ``uploads.max_object_mb``; it is tuned with its usual
    image (weight ``1 - LARGEST_PAYLOAD_SHARE``) and an uploaded image just under that limit
    (``largest``), so the sizes that would run out of memory on it are never recommended.
    """
    if key != "file-processor":
        return sample_event(settings, key)
    refs = _stack_refs(settings)
    return [
        {"payload": _uploaded_image_event(settings, refs["uploads_bucket"]), "weight": 1 - LARGEST_PAYLOAD_SHARE},
        {"payload": largest_image_event(settings, refs["uploads_bucket"]), "weight": LARGEST_PAYLOAD_SHARE,
         "largest": True},
    ]


def largest_png(limit_bytes: int, seed: int = 0) -> bytes:
    """An uncompressed RGB PNG of random pixels just under ``limit_bytes`` (it decodes to about its file size).

    Written directly (signature, IHDR, one stored-zlib IDAT, IEND): Pillow's encoder takes seconds
    on 50 MB; the file is checked by Pillow in the tests.
    """
    side = int(math.sqrt(max(limit_bytes - _BELOW_LIMIT_BYTES, 3 * 64 * 64) / 3))
    rows = np.random.default_rng(seed).integers(0, 256, size=(side, 1 + 3 * side), dtype=np.uint8)
    rows[:, 0] = 0                                   # filter type None on every row
    data = zlib.compress(rows.tobytes(), 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)   # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def largest_image_event(settings: config.Settings, bucket: str) -> dict[str, Any]:
    """An S3 event for an uploaded image of (just under) ``uploads.max_object_mb``, the largest the function accepts."""
    body = largest_png(settings.params.uploads.max_object_mb * 1024 * 1024)
    key = f"{settings.params.uploads.prefix}power tuning/largest-{uuid.uuid4().hex[:8]}.png"
    aws.client("s3", settings.params.aws_region).put_object(Bucket=bucket, Key=key, Body=body)
    return s3_object_created(bucket, key, len(body), settings.params.aws_region)

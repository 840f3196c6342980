"""Realistic load on every event source of the local stack, with a share of bad inputs.

Sources and their bad inputs:
- the HTTP API (valid JWTs from the local JWT secret; bad: garbage or missing tokens, bad JSON),
- the Function URL (SigV4-signed; bad: unsigned requests),
- the task queue (order messages; bad: poison bodies the data processor rejects),
- the notifications topic (SNS -> queue -> notification handler; bad: non-JSON messages),
- the uploads bucket (text, CSV, JSON and PNG files; bad: corrupt images, unsupported types), and
  through it dataPipeline (each processed file starts an execution; bad: a share of valid JSON
  files with a NUL in a key, which the file processor accepts and PostgreSQL cannot store, so the
  pipeline's data step fails and its Catch notifies; the first upload of a run is always a good
  file and the second such a file, so every run has both outcomes),
- the schedules fire by themselves on the accelerated clock.

Profiles: ``steady`` (constant rates), ``burst`` (quiet, then 6x bursts of 5 s every 20 s, which
drives scale-out and throttles), ``mixed`` (steady with bursts). The summary per function is read
back from the CloudWatch Logs the run produced, with the loaders the notebooks use.
"""
from __future__ import annotations

import io
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from PIL import Image

from workbook import aws
from workbook.local import manager
from workbook.local.client import topology as read_topology
from workbook.telemetry.logs import load_reports

# Events per second of each source in the steady profile.
BASE_RATES = {"api": 4.0, "function_url": 0.5, "task": 3.0, "notification": 0.5, "upload": 0.3}
BURST_FACTOR, BURST_EVERY_S, BURST_LENGTH_S = 6.0, 20.0, 5.0


def rate_multiplier(profile: str, elapsed_s: float) -> float:
    """How many times the base rates apply at ``elapsed_s`` into the run."""
    in_burst = (elapsed_s % BURST_EVERY_S) >= BURST_EVERY_S - BURST_LENGTH_S
    if profile == "steady":
        return 1.0
    if profile == "burst":
        return BURST_FACTOR if in_burst else 0.3
    if profile == "mixed":
        return BURST_FACTOR if in_burst else 1.0
    raise ValueError(f"unknown traffic profile {profile!r}; use steady, burst or mixed")


class Traffic:
    """One traffic run against a running local environment."""

    def __init__(self, recorded: dict, settings, *, bad_share: float = 0.1, seed: int | None = None) -> None:
        manager.activate()
        self.recorded, self.settings, self.bad_share = recorded, settings, bad_share
        self.random = random.Random(seed)
        self.endpoints = manager.endpoints(recorded)
        self.topology = read_topology(recorded)
        self.refs = self.topology.get("refs", {})
        self.aws = aws
        self.sent: Counter = Counter()
        self.bad: Counter = Counter()
        self.failures: Counter = Counter()
        self._lock = threading.Lock()
        self._item_ids: list[str] = []
        self._uploads = 0
        self._token = self._make_token()
        self._png = _tiny_png()

    # -- inputs ---------------------------------------------------------------------------------
    def _make_token(self) -> str | None:
        arn = self.refs.get("jwt_secret_arn")
        if not arn:
            return None
        secret = json.loads(self.aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
        now = int(time.time())
        claims = {"iss": self.settings.params.jwt.issuer, "aud": self.settings.params.jwt.audience, "sub": "traffic",
                  "iat": now, "nbf": now, "exp": now + 3600, "scope": "items:read items:write", "client_id": "traffic"}
        return jwt.encode(claims, secret["hs256_key"], algorithm="HS256")

    def _is_bad(self) -> bool:
        return self.random.random() < self.bad_share

    def _http(self, url: str, method: str = "GET", body: Any = None, headers: dict | None = None) -> int:
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=40) as response:
                payload = response.read()
                if method == "POST" and response.status in (200, 201):
                    try:
                        item = json.loads(payload)
                        identifier = item.get("id") or (item.get("item") or {}).get("id")
                        if identifier:
                            with self._lock:
                                self._item_ids.append(str(identifier))
                    except (ValueError, AttributeError):
                        pass
                return response.status
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code

    def api(self) -> None:
        base = self.endpoints["http_api"]
        auth = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        if self._is_bad():
            self.bad["api"] += 1
            choice = self.random.choice(("garbage-token", "no-token", "bad-json"))
            if choice == "garbage-token":
                self._http(f"{base}/items", headers={"Authorization": "Bearer not.a.jwt"})
            elif choice == "no-token":
                self._http(f"{base}/items")
            else:
                self._http(f"{base}/items", "POST", b"{not json", auth)
            return
        roll = self.random.random()
        if roll < 0.15:
            self._http(f"{base}/health")
        elif roll < 0.45:
            self._http(f"{base}/items", "POST",
                       {"name": f"item-{uuid.uuid4().hex[:8]}", "description": "from traffic",
                        "attributes": {"size": self.random.randint(1, 100)}}, auth)
        elif roll < 0.75 and self._item_ids:
            self._http(f"{base}/items/{self.random.choice(self._item_ids)}", headers=auth)
        else:
            self._http(f"{base}/items", headers=auth)

    def function_url(self) -> None:
        url = self.endpoints["function_url"] + "/health"
        if self._is_bad():
            self.bad["function_url"] += 1
            self._http(url)   # unsigned: 403 from the URL's AWS_IAM auth
            return
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials("testing", "testing"), "lambda", "us-east-1").add_auth(request)
        self._http(url, headers=dict(request.headers))

    def task(self) -> None:
        url = self.refs.get("task_queue_url")
        if not url:
            return
        if self._is_bad():
            self.bad["task"] += 1
            body = self.random.choice(("{not json", json.dumps({"kind": "!!", "payload": 3}), "[]"))
        else:
            body = json.dumps({"kind": "order.created", "business_key": f"order-{uuid.uuid4().hex[:10]}",
                               "payload": {"amount": self.random.randint(1, 500), "currency": "EUR"}})
        self.aws.client("sqs").send_message(QueueUrl=url, MessageBody=body)

    def notification(self) -> None:
        arn = self.refs.get("notifications_topic_arn")
        if not arn:
            return
        if self._is_bad():
            self.bad["notification"] += 1
            message = "<<not json>>"
        else:
            message = json.dumps({"kind": "traffic.ping", "text": f"hello {uuid.uuid4().hex[:6]}"})
        self.aws.client("sns").publish(TopicArn=arn, Message=message, Subject="traffic")

    def upload(self) -> None:
        bucket = self.refs.get("uploads_bucket")
        if not bucket:
            return
        prefix = self.settings.params.uploads.prefix
        name = uuid.uuid4().hex[:10]
        with self._lock:
            self._uploads += 1
            number = self._uploads
        if pipeline_poison(number, self.bad_share):
            self.bad["pipeline"] += 1
            key, body = f"{prefix}{name}.json", PIPELINE_POISON
        elif number > 1 and self._is_bad():
            self.bad["upload"] += 1
            key, body = self.random.choice(((f"{prefix}{name}.png", b"\x89PNG-but-not-really"),
                                            (f"{prefix}{name}.pdf", b"%PDF-1.4 truncated"),
                                            (f"{prefix}{name}.json", b"{broken")))
        else:
            key, body = self.random.choice(((f"{prefix}{name}.txt", b"hello\nworld\n"),
                                            (f"{prefix}{name}.csv", b"a,b\n1,2\n3,4\n"),
                                            (f"{prefix}{name}.json", b'{"k": 1}'),
                                            (f"{prefix}{name}.png", self._png)))
        self.aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)

    # -- the run ------------------------------------------------------------------------------
    def run(self, profile: str, duration_s: float, progress: bool = True) -> dict:
        actions: dict[str, Callable[[], None]] = {"api": self.api, "function_url": self.function_url,
                                                  "task": self.task, "notification": self.notification,
                                                  "upload": self.upload}
        started = time.time()
        credit = {name: self.random.random() for name in actions}
        tick_s = 0.05
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="traffic") as pool:
            last_draw = 0.0
            while (elapsed := time.time() - started) < duration_s:
                multiplier = rate_multiplier(profile, elapsed)
                for name, action in actions.items():
                    credit[name] += BASE_RATES[name] * multiplier * tick_s
                    while credit[name] >= 1.0:
                        credit[name] -= 1.0
                        self.sent[name] += 1
                        pool.submit(self._safely, name, action)
                if progress and elapsed - last_draw >= 0.25:
                    _draw(elapsed, duration_s, self.sent, multiplier)
                    last_draw = elapsed
                time.sleep(tick_s)
        if progress:
            _draw(duration_s, duration_s, self.sent, 0.0)
            print(file=sys.stderr)
        return {"started": started, "ended": time.time(), "sent": dict(self.sent), "bad": dict(self.bad),
                "client_failures": dict(self.failures)}

    def _safely(self, name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # noqa: BLE001 - a client-side failure is counted, not fatal to the run
            self.failures[name] += 1


# Valid JSON whose key holds a NUL (\u0000): processed as a file, refused by PostgreSQL in the pipeline's data step.
PIPELINE_POISON = b'{"reading\\u0000": 1}'


def pipeline_poison(upload_number: int, bad_share: float) -> bool:
    """Whether the ``upload_number``-th upload (1-based) is a file the pipeline's data step fails on.

    One in ``round(1 / bad_share)`` uploads, starting with the second, so that a run of two uploads
    or more has both a succeeded and a failed execution; none when ``bad_share`` is 0.
    """
    if bad_share <= 0:
        return False
    cadence = max(2, round(1 / bad_share))
    return upload_number % cadence == 2 % cadence


def _draw(elapsed: float, total: float, sent: Counter, multiplier: float) -> None:
    width = 30
    done = int(width * min(elapsed / total, 1.0))
    counts = " ".join(f"{name} {count}" for name, count in sorted(sent.items()))
    burst = " BURST" if multiplier > 1.5 else ""
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {elapsed:5.1f}/{total:.0f}s  sent: {counts}{burst}   ")
    sys.stderr.flush()


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def drain(recorded: dict, timeout_s: float = 20.0) -> None:
    """Wait until the engine has no async invocations pending and nothing is in flight."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        engine = manager.status().get("engine") or {}
        busy = sum(fn.get("in_flight", 0) for fn in (engine.get("functions") or {}).values())
        if not busy and not engine.get("async_pending"):
            break
        time.sleep(0.5)
    time.sleep(1.5)   # the engine ships logs every half second


def summarize(recorded: dict, started: float, ended: float) -> list[dict]:
    """Per function: invocations, errors, cold starts and p50/p99 duration, from the REPORT lines."""
    manager.activate()
    names = {entry["function_name"]: entry["key"] for entry in read_topology(recorded)["functions"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the note that Logs Insights is not used locally
        frame = load_reports(list(names), int(started * 1000) - 1000, int(ended * 1000) + 1000)
    rows = []
    for function_name, key in names.items():
        part = frame[frame["function"] == function_name] if len(frame) else frame
        durations = part["duration_ms"] if len(part) else None
        rows.append({
            "function": key,
            "invocations": int(len(part)),
            "errors": int((part["status"] != "ok").sum()) if len(part) else 0,
            "cold_starts": int(part["cold_start"].sum()) if len(part) else 0,
            "p50_ms": float(durations.quantile(0.5)) if durations is not None else None,
            "p99_ms": float(durations.quantile(0.99)) if durations is not None else None,
        })
    return rows


def run(recorded: dict, settings, *, profile: str = "steady", duration_s: float = 60.0, bad_share: float = 0.1,
        seed: int | None = None, progress: bool = True) -> dict:
    """Drive the local stack for ``duration_s`` seconds; returns what was sent and the per-function summary."""
    traffic = Traffic(recorded, settings, bad_share=bad_share, seed=seed)
    result = traffic.run(profile, duration_s, progress)
    drain(recorded)
    result["ended"] = time.time()
    result["functions"] = summarize(recorded, result["started"], result["ended"])
    result["profile"], result["duration_s"] = profile, duration_s
    return result


def format_summary(result: dict) -> str:
    sent = ", ".join(f"{name} {count}" for name, count in sorted(result["sent"].items()))
    bad = ", ".join(f"{name} {count}" for name, count in sorted(result["bad"].items())) or "none"
    lines = [f"profile {result['profile']}, {result['duration_s']:.0f} s; sent: {sent}; bad inputs: {bad}",
             f"{'function':<22}{'invocations':>12}{'errors':>8}{'cold':>6}{'p50 ms':>10}{'p99 ms':>10}"]
    for row in result["functions"]:
        p50 = f"{row['p50_ms']:.1f}" if row["p50_ms"] is not None else "-"
        p99 = f"{row['p99_ms']:.1f}" if row["p99_ms"] is not None else "-"
        lines.append(f"{row['function']:<22}{row['invocations']:>12}{row['errors']:>8}{row['cold_starts']:>6}{p50:>10}{p99:>10}")
    if result.get("client_failures"):
        lines.append(f"client-side failures: {result['client_failures']}")
    return "\n".join(lines)

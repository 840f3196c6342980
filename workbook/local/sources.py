"""Event sources, driven as AWS drives them: SQS pollers, asynchronous invocation, S3, EventBridge.

- SQS event source mappings poll with long polling, gather a batch up to the batch size or the
  batching window, invoke synchronously, and delete what succeeded (all of it, or everything but
  ``batchItemFailures`` when partial-batch responses are on). Failed messages are left alone:
  they come back after the visibility timeout, and moto moves them to the DLQ after
  maxReceiveCount. Up to ``maximumConcurrency`` batches run at once.
- Asynchronous invocations (S3, EventBridge) go through an internal queue: up to
  ``maximumRetryAttempts`` retries with backoff (1 then 2 minutes on AWS; divided by the clock
  factor here), then the on-failure destination with Lambda's invocation record.
- Schedules run on an accelerated clock: one real second is ``clock_factor`` seconds.
"""
from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from croniter import croniter

from workbook.local import stepfunctions
from workbook.local.sandbox import Sandbox
from workbook.local.sandbox.models import InvocationOutcome

_log = logging.getLogger(__name__)
SQS_NAMESPACE = "AWS/SQS"
LAMBDA_NAMESPACE = "AWS/Lambda"


class _Worker(threading.Thread):
    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.stop_event = stop

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - keep polling through a transient endpoint error
                _log.warning("%s: step failed", self.name, exc_info=True)
                self.stop_event.wait(1.0)

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# -- SQS event source mappings -----------------------------------------------------------------
def _sqs_record(message: dict, queue_arn: str, region: str) -> dict:
    attributes = message.get("Attributes", {})
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {key: attributes[key] for key in (
            "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
            "SequenceNumber", "MessageGroupId", "MessageDeduplicationId", "AWSTraceHeader") if key in attributes},
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    for name, value in (message.get("MessageAttributes") or {}).items():
        record["messageAttributes"][name] = {
            "stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []), "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType")}
    return record


# moto's SQS backend is not thread-safe: two ReceiveMessage calls on one queue that both move the
# same message to its DLQ fail one of them with HTTP 500 ("list.remove(x): x not in list"), and the
# messages that call had already marked received are lost to the caller until their visibility
# timeout ends, one receive closer to the DLQ. The pollers of a queue therefore take turns to receive.
_receive_locks: dict[str, threading.Lock] = {}
_receive_locks_guard = threading.Lock()


def _receive_lock(queue_url: str) -> threading.Lock:
    with _receive_locks_guard:
        return _receive_locks.setdefault(queue_url, threading.Lock())


class SqsPoller(_Worker):
    """One poller of an SQS event source mapping (a mapping runs ``maximum_concurrency`` of them)."""

    def __init__(self, sandbox: Sandbox, mapping: dict, client: Callable[[str], Any], stop: threading.Event,
                 index: int = 0, region: str = "us-east-1", on_age: Callable[[str, float], None] | None = None) -> None:
        super().__init__(f"esm-{mapping['name']}-{index}", stop)
        self.sandbox, self.mapping, self.client, self.region = sandbox, mapping, client, region
        self.on_age = on_age
        self.batches = 0

    def step(self) -> None:
        mapping = self.mapping
        sqs = self.client("sqs")
        batch: list[dict] = []
        window_s = mapping["batching_window_s"]
        deadline = None   # the batching window opens with the first message, as on AWS
        while len(batch) < mapping["batch_size"] and not self.stop_event.is_set():
            if deadline is None:
                wait_s = 1
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait_s = 1 if remaining >= 1 else 0
            with _receive_lock(mapping["queue_url"]):
                response = sqs.receive_message(
                    QueueUrl=mapping["queue_url"], MaxNumberOfMessages=min(10, mapping["batch_size"] - len(batch)),
                    WaitTimeSeconds=wait_s, AttributeNames=["All"], MessageAttributeNames=["All"])
            messages = response.get("Messages", [])
            if not batch and not messages:
                return  # nothing yet; poll again
            batch.extend(messages)
            if deadline is None:
                deadline = time.monotonic() + window_s
            if window_s <= 0 and not messages:
                break
            if not messages and wait_s == 0:
                self.stop_event.wait(min(0.05, max(deadline - time.monotonic(), 0)))
        if not batch:
            return
        now_ms = time.time() * 1000
        oldest_s = max((now_ms - int(m.get("Attributes", {}).get("SentTimestamp", now_ms))) / 1000 for m in batch)
        if self.on_age:
            self.on_age(mapping["queue_url"], oldest_s)
        event = {"Records": [_sqs_record(m, mapping["queue_arn"], self.region) for m in batch]}
        outcome = self.sandbox.invoke(mapping["function"], event)
        self.batches += 1
        if outcome.throttled:
            # AWS backs off and lets the messages return after their visibility timeout.
            self.stop_event.wait(1.0)
            return
        if outcome.function_error:
            return  # the whole batch failed: every message comes back after the visibility timeout
        failed: set[str] = set()
        if mapping["report_batch_item_failures"]:
            failed, whole_batch = _batch_item_failures(outcome, batch)
            if whole_batch:
                return
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])]
            sqs.delete_message_batch(QueueUrl=mapping["queue_url"], Entries=entries)


def _batch_item_failures(outcome: InvocationOutcome, batch: list[dict]) -> tuple[set[str], bool]:
    """The failed message ids of a partial-batch response; True when AWS would fail the whole batch."""
    try:
        response = outcome.json()
    except ValueError:
        return set(), True
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set(), False   # None, {} or an empty list: the batch succeeded
    ids = {m["MessageId"] for m in batch}
    failed = set()
    for item in response["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in ids:
            return set(), True   # a malformed response fails the whole batch, as on AWS
        failed.add(identifier)
    return failed, False


# -- asynchronous invocation --------------------------------------------------------------------
class AsyncInvoker(_Worker):
    """Lambda's internal queue for Event invocations: retries with backoff, then destinations."""

    BACKOFF_S = (60.0, 120.0)

    def __init__(self, sandbox: Sandbox, configs: dict[str, dict], client: Callable[[str], Any],
                 stop: threading.Event, clock_factor: float = 1.0, workers: int = 4) -> None:
        super().__init__("async-invoker", stop)
        self.sandbox, self.configs, self.client = sandbox, configs, client
        self.clock_factor = clock_factor
        self._heap: list[tuple[float, int, dict]] = []
        self._cv = threading.Condition()
        self._sequence = 0
        self._workers = [threading.Thread(target=self._work, name=f"async-{i}", daemon=True) for i in range(workers)]
        for worker in self._workers:
            worker.start()

    def submit(self, function: str, event: Any) -> str:
        """Queue an Event invocation; returns its request id (HTTP 202 on AWS)."""
        request_id = str(uuid.uuid4())
        self._push(time.monotonic(), {"function": function, "event": event, "request_id": request_id,
                                      "attempt": 0, "enqueued": time.time()})
        return request_id

    def _push(self, when: float, item: dict) -> None:
        with self._cv:
            self._sequence += 1
            heapq.heappush(self._heap, (when, self._sequence, item))
            self._cv.notify()

    def step(self) -> None:
        self.stop_event.wait(1.0)

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def _work(self) -> None:
        while not self.stop_event.is_set():
            with self._cv:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = (self._heap[0][0] - time.monotonic()) if self._heap else 0.5
                    self._cv.wait(min(max(timeout, 0.01), 0.5))
                    if self.stop_event.is_set():
                        return
                _, _, item = heapq.heappop(self._heap)
            try:
                self._attempt(item)
            except Exception:  # noqa: BLE001 - one failed async invocation must not stop the queue; it is logged
                _log.warning("async invocation failed", exc_info=True)

    def _attempt(self, item: dict) -> None:
        function = item["function"]
        config = self.configs.get(self.sandbox.function(function).function_name, {})
        retries = int(config.get("maximum_retry_attempts", 2))
        max_age_s = float(config.get("maximum_event_age_s", 21600))
        outcome = self.sandbox.invoke(function, item["event"])
        item["attempt"] += 1
        if outcome.throttled:
            # Throttles and system errors are retried for up to the maximum event age.
            if (time.time() - item["enqueued"]) * self.clock_factor < max_age_s:
                self._push(time.monotonic() + 1.0, item)
            else:
                self._destination(config.get("on_failure"), item, outcome, "EventAgeExceeded")
            return
        if outcome.function_error is None:
            self._destination(config.get("on_success"), item, outcome, "Success")
            return
        if item["attempt"] <= retries:
            delay_s = self.BACKOFF_S[min(item["attempt"] - 1, len(self.BACKOFF_S) - 1)] / self.clock_factor
            self._push(time.monotonic() + delay_s, item)
            return
        self._destination(config.get("on_failure"), item, outcome, "RetriesExhausted")

    def _destination(self, arn: str | None, item: dict, outcome: InvocationOutcome, condition: str) -> None:
        if not arn:
            return
        config = self.sandbox.function(item["function"])
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {"requestId": item["request_id"], "functionArn": f"{config.function_arn}:$LATEST",
                               "condition": condition, "approximateInvokeCount": item["attempt"]},
            "requestPayload": item["event"],
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                **({"functionError": outcome.function_error} if outcome.function_error else {})},
            "responsePayload": _json_or_text(outcome.payload),
        }
        deliver(self.client, arn, record, self)


def _json_or_text(payload: bytes):
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return payload.decode("utf-8", "replace")


def deliver(client: Callable[[str], Any], arn: str, message: Any, async_invoker: AsyncInvoker | None) -> None:
    """Send ``message`` to an SQS queue, SNS topic or Lambda function (asynchronously) by ARN."""
    body = message if isinstance(message, str) else json.dumps(message)
    service = arn.split(":")[2]
    if service == "sqs":
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body)
    elif service == "sns":
        client("sns").publish(TopicArn=arn, Message=body)
    elif service == "lambda" and async_invoker is not None:
        async_invoker.submit(arn, json.loads(body))
    elif service == "states":   # [pipeline] a rule's Step Functions target: one execution per event
        stepfunctions.start_execution(client, arn, body)
    else:
        raise ValueError(f"no local delivery to {arn}")


# -- S3 notifications -----------------------------------------------------------------------------
class S3NotificationRouter(_Worker):
    """Polls a bucket's internal notification queue and invokes the configured function asynchronously."""

    def __init__(self, route: dict, client: Callable[[str], Any], async_invoker: AsyncInvoker, stop: threading.Event) -> None:
        super().__init__(f"s3-{route['bucket']}", stop)
        self.route, self.client, self.async_invoker = route, client, async_invoker

    def step(self) -> None:
        sqs = self.client("sqs")
        response = sqs.receive_message(QueueUrl=self.route["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in response.get("Messages", []):
            body = json.loads(message["Body"])
            for record in body.get("Records", []):  # s3:TestEvent has none
                function = self.route["functions"].get(record.get("s3", {}).get("configurationId"))
                if function:
                    _s3_key_as_aws_encodes_it(record)
                    self.async_invoker.submit(function, {"Records": [record]})
            sqs.delete_message(QueueUrl=self.route["queue_url"], ReceiptHandle=message["ReceiptHandle"])


def _s3_key_as_aws_encodes_it(record: dict) -> None:
    """moto encodes '/' in notification keys as %2F; S3 form-encodes the key but keeps the slashes."""
    obj = record.get("s3", {}).get("object", {})
    if "key" in obj:
        obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")


# -- EventBridge ----------------------------------------------------------------------------------
class RuleForwarder(_Worker):
    """Delivers what moto matched for an event-pattern rule to the rule's real targets."""

    def __init__(self, rule: dict, client: Callable[[str], Any], async_invoker: AsyncInvoker, stop: threading.Event) -> None:
        super().__init__(f"rule-{rule['name']}", stop)
        self.rule, self.client, self.async_invoker = rule, client, async_invoker
        self.delivered = 0

    def step(self) -> None:
        sqs = self.client("sqs")
        response = sqs.receive_message(QueueUrl=self.rule["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in response.get("Messages", []):
            event = json.loads(message["Body"])
            for target in self.rule["targets"]:
                payload = json.loads(target["input"]) if target.get("input") else event
                try:
                    deliver(self.client, target["arn"], payload, self.async_invoker)
                    self.delivered += 1
                except Exception:  # noqa: BLE001 - a failed target delivery goes to its dead-letter queue, as EventBridge does
                    if target.get("dead_letter_arn"):
                        deliver(self.client, target["dead_letter_arn"], event, None)
            sqs.delete_message(QueueUrl=self.rule["queue_url"], ReceiptHandle=message["ReceiptHandle"])


def _rate_seconds(expression: str) -> float | None:
    if not expression.startswith("rate("):
        return None
    value, unit = expression[5:-1].split()
    return int(value) * {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]


class ScheduleClock(_Worker):
    """Fires schedule rules on an accelerated clock (``clock_factor`` virtual seconds per real second)."""

    def __init__(self, rules: list[dict], async_invoker: AsyncInvoker, client: Callable[[str], Any],
                 stop: threading.Event, clock_factor: float, region: str = "us-east-1") -> None:
        super().__init__("schedules", stop)
        self.rules = [rule for rule in rules if rule.get("schedule") and rule.get("state", "ENABLED") == "ENABLED"]
        self.async_invoker, self.client = async_invoker, client
        self.clock_factor, self.region = clock_factor, region
        self.started_real = time.monotonic()
        self.started_virtual = datetime.now(UTC)
        self.fired = 0
        self._next = {rule["name"]: self._following(rule, self.started_virtual) for rule in self.rules}

    def virtual_now(self) -> datetime:
        return self.started_virtual + timedelta(seconds=(time.monotonic() - self.started_real) * self.clock_factor)

    def _following(self, rule: dict, after: datetime) -> datetime:
        rate = _rate_seconds(rule["schedule"])
        if rate is not None:
            return after + timedelta(seconds=rate)
        fields = rule["schedule"][5:-1].split()
        minute, hour, dom, month, dow = fields[:5]
        dom = "*" if dom == "?" else dom
        dow = "*" if dow == "?" else _dow_to_cron(dow)
        return croniter(" ".join((minute, hour, dom, month, dow)), after).get_next(datetime)

    def step(self) -> None:
        now = self.virtual_now()
        for rule in self.rules:
            if self._next[rule["name"]] <= now:
                fire_time = self._next[rule["name"]]
                self._next[rule["name"]] = self._following(rule, fire_time)
                self._fire(rule, fire_time)
        self.stop_event.wait(0.05)

    def _fire(self, rule: dict, at: datetime) -> None:
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": self.region,
                 "resources": [rule["arn"]], "detail": {}}
        self.fired += 1
        for target in rule["targets"]:
            payload = json.loads(target["input"]) if target.get("input") else event
            deliver(self.client, target["arn"], payload, self.async_invoker)


def _dow_to_cron(field: str) -> str:
    """EventBridge numbers days 1-7 from Sunday; cron 0-6."""
    out = []
    for part in field.split(","):
        if part.isdigit():
            out.append(str(int(part) - 1))
        elif "-" in part and all(p.isdigit() for p in part.split("-")):
            low, high = part.split("-")
            out.append(f"{int(low) - 1}-{int(high) - 1}")
        else:
            out.append(part)
    return ",".join(out)


# -- SQS metrics ------------------------------------------------------------------------------------
class QueueMetrics(_Worker):
    """Publishes AWS/SQS depth for the plan's queues (DLQs included) and the age of the oldest
    message of the event-source queues (the oldest each poller received in the period)."""

    def __init__(self, topology: dict, client: Callable[[str], Any], telemetry, stop: threading.Event,
                 interval_s: float = 10.0) -> None:
        super().__init__("queue-metrics", stop)
        self.topology, self.client, self.telemetry, self.interval_s = topology, client, telemetry, interval_s
        self._ages: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe_age(self, queue_url: str, age_s: float) -> None:
        with self._lock:
            self._ages[queue_url] = max(self._ages.get(queue_url, 0.0), age_s)

    def step(self) -> None:
        if self.stop_event.wait(self.interval_s):
            return
        sqs = self.client("sqs")
        # SQS publishes depth for every queue; the DLQs' is what the stack's alarms watch.
        for name, url in self.topology.get("queues", {}).items():
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
            values = attributes["Attributes"]
            dims = {"QueueName": name}
            self.telemetry.metric(SQS_NAMESPACE, "ApproximateNumberOfMessagesVisible",
                                  int(values.get("ApproximateNumberOfMessages", 0)), "Count", dims)
            self.telemetry.metric(SQS_NAMESPACE, "ApproximateNumberOfMessagesNotVisible",
                                  int(values.get("ApproximateNumberOfMessagesNotVisible", 0)), "Count", dims)
        with self._lock:
            ages, self._ages = self._ages, {}
        for mapping in self.topology.get("event_source_mappings", []):
            name = mapping["queue_url"].rstrip("/").rsplit("/", 1)[-1]
            age_s = ages.get(mapping["queue_url"], 0.0)
            self.telemetry.metric(SQS_NAMESPACE, "ApproximateAgeOfOldestMessage", round(age_s, 3), "Seconds",
                                  {"QueueName": name})

"""moto's SQS behind the router answers as moto does, without the costs that grow with the queue."""
from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws
from moto.core import utils
from moto.sqs import models

from workbook.local import moto_router


@pytest.fixture
def restore_moto():
    saved = (models.unix_time, models.unix_time_millis, models.SQSBackend.is_message_valid_based_on_retention_period)
    yield
    models.unix_time, models.unix_time_millis, models.SQSBackend.is_message_valid_based_on_retention_period = saved


def _scenario(patched: bool) -> dict:
    """A queue with messages past and within retention, delayed and in flight: what receives and attributes say."""
    with mock_aws():
        if patched:
            moto_router.faster_sqs()
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        for index in range(30):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{index}", DelaySeconds=60 if index % 10 == 9 else 0)
        queue = models.sqs_backends["123456789012"]["us-east-1"].get_queue("q")
        for message in queue._messages[:5]:   # sent 61 s and 59 s ago: past and within the 60 s retention
            message.sent_timestamp -= 61_000
        for message in queue._messages[5:8]:
            message.sent_timestamp -= 59_000
        # (moto ends a receive at the first message past retention, after marking it received)
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        rest = []
        for _ in range(8):
            rest += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return {"first": [m["Body"] for m in first], "rest": sorted(m["Body"] for m in rest),
                "counts": {k: v for k, v in attributes.items() if k.startswith("ApproximateNumber")}}


def test_faster_sqs_answers_as_moto_does(restore_moto):
    # GIVEN the same queue and calls, on moto as shipped and with the router's change
    shipped = _scenario(patched=False)
    faster = _scenario(patched=True)
    # THEN every receive and every count is the same, retention and delays included
    assert faster == shipped
    assert not {f"m{i}" for i in range(5)} & set(shipped["first"] + shipped["rest"])   # past retention: never received
    assert {"m5", "m6", "m7"} <= set(shipped["first"] + shipped["rest"])
    assert shipped["counts"]["ApproximateNumberOfMessagesDelayed"] == "3"


def test_the_clock_is_moto_own_clock(restore_moto):
    moto_router.faster_sqs()
    assert abs(models.unix_time() - utils.unix_time()) < 0.05
    assert abs(models.unix_time_millis() - utils.unix_time_millis()) < 50
    assert models.unix_time(utils.utcfromtimestamp(1234)) == utils.unix_time(utils.utcfromtimestamp(1234)) == 1234
    assert time.time() - models.unix_time() < 1

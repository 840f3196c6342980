"""SQS queues: a source queue with its dead-letter queue, and stand-alone DLQs, each with its alarms."""
from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.config import QueueParams, Settings

MAX_RETENTION_S = 1_209_600   # 14 days, SQS's maximum: a DLQ keeps what failed as long as it can


def _queue_alarm(name: str, settings: Settings, queue: aws.sqs.Queue, metric: str, *, threshold: float,
                 evaluation_periods: int, description: str, alarm_topic_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions) -> aws.cloudwatch.MetricAlarm:
    """An alarm on the queue's AWS/SQS ``metric`` (Maximum) above ``threshold``, to and from the alarms topic."""
    return aws.cloudwatch.MetricAlarm(
        name,
        name=settings.name(name),
        alarm_description=description,
        namespace="AWS/SQS",
        metric_name=metric,
        dimensions={"QueueName": queue.name},
        statistic="Maximum",
        period=settings.params.alarms.period_s,
        evaluation_periods=evaluation_periods,
        threshold=threshold,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[alarm_topic_arn],
        ok_actions=[alarm_topic_arn],
        tags=settings.tags,
        opts=opts,
    )


class DeadLetterQueue(pulumi.ComponentResource):
    """A KMS-encrypted DLQ (of a queue, an async on-failure destination, an EventBridge target) with a depth alarm."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        kms_key_arn: pulumi.Input[str],
        alarm_topic_arn: pulumi.Input[str],
        retention_s: int = MAX_RETENTION_S,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("workbook:messaging:DeadLetterQueue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.queue = aws.sqs.Queue(
            name,
            name=settings.name(name),
            message_retention_seconds=retention_s,
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            tags=settings.tags,
            opts=child,
        )
        self.depth_alarm = _queue_alarm(
            f"{name}-depth", settings, self.queue, "ApproximateNumberOfMessagesVisible", threshold=0,
            evaluation_periods=1, description=f"Messages in {settings.name(name)}: inspect and redrive them",
            alarm_topic_arn=alarm_topic_arn, opts=child)
        self.arn = self.queue.arn
        self.url = self.queue.url
        self.register_outputs({"arn": self.arn, "url": self.url})


class QueueWithDlq(pulumi.ComponentResource):
    """A KMS-encrypted queue whose failures redrive to its DLQ; alarms on DLQ depth and message age."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        queue: QueueParams,
        kms_key_arn: pulumi.Input[str],
        alarm_topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("workbook:messaging:QueueWithDlq", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = settings.tags
        self.dead_letters = DeadLetterQueue(f"{name}-dlq", settings, kms_key_arn, alarm_topic_arn,
                                            retention_s=queue.dlq_retention_s, opts=child)
        self.dlq = self.dead_letters.queue
        self.queue = aws.sqs.Queue(
            name,
            name=settings.name(name),
            visibility_timeout_seconds=queue.visibility_timeout_s,
            message_retention_seconds=queue.message_retention_s,
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            receive_wait_time_seconds=20,
            redrive_policy=self.dlq.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": queue.max_receive_count})
            ),
            tags=tags,
            opts=child,
        )
        # Only this queue may redrive into the DLQ.
        self.redrive_allow = aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-allow",
            queue_url=self.dlq.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child,
        )
        self.age_alarm = _queue_alarm(
            f"{name}-oldest-age", settings, self.queue, "ApproximateAgeOfOldestMessage",
            threshold=queue.oldest_message_alarm_s, evaluation_periods=settings.params.alarms.evaluation_periods,
            description=f"Oldest message in {settings.name(name)} older than {queue.oldest_message_alarm_s} s",
            alarm_topic_arn=alarm_topic_arn, opts=child)
        self.arn = self.queue.arn
        self.url = self.queue.url
        self.dlq_arn = self.dlq.arn
        self.register_outputs({"arn": self.arn, "url": self.url, "dlq_arn": self.dlq_arn})

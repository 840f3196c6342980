"""dataPipeline: the Step Functions workflow that takes each processed file into the database.

``definition(...)`` is a pure function: the Amazon States Language document, built from the
functions' and topic's ARNs and the retry policy, tested as data (``tests/infra/test_pipeline_definition.py``).
``build(...)`` declares it with its role, log group, trigger and alarms.

**The trigger.** The file processor puts a ``FileProcessed`` event on the stack's bus for every
file it processed; the ``file-processed`` rule already announces it on the notifications topic,
and a second target starts one execution of this state machine per event (with the rule's
retry policy and the events DLQ, through a role that may call ``states:StartExecution`` on this
state machine only). The execution's input is the EventBridge event.

**The seams** (the handlers' pipeline contract, in ``handlers/file_processor.py`` and
``handlers/data_processor.py``):

- ``ProcessFile`` invokes the file processor with the event. In its pipeline contract it checks the
  event (a malformed input fails the step with ``InvalidEvent`` and the field it lacks) and
  returns ``{"message": {"kind", "business_key", "payload"}}``: the data processor's message.
- ``ProcessData`` invokes the data processor with ``{"pipeline": {"execution", "message"}}``. It
  stores the one record as it stores a queued one and returns ``{"record_key", "deliveries"}``; a
  record it cannot store raises (``ValidationError`` and the reason), so the step fails.
- Any error of either step, after the retries of Lambda's service errors, is caught: a ``Pass``
  state names the step, ``NotifyFailure`` publishes ``dataPipeline failed`` with the step, error
  and cause to the notifications topic, and the execution fails with the step's own error.
  Otherwise ``Notify`` publishes ``dataPipeline succeeded``.

The execution has a time budget (``pipeline.timeout_s``): past it, it ends ``TIMED_OUT``.
"""
from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import LambdaFunction, iam
from infra.config import RetryParams, Settings

# Lambda errors worth a retry in Step Functions (AWS's recommended set).
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
STEPS = ("ProcessFile", "ProcessData")
SUCCEEDED_SUBJECT = "dataPipeline succeeded"
FAILED_SUBJECT = "dataPipeline failed"


def retry_policy(retry: RetryParams) -> list[dict[str, Any]]:
    """The Retry field of each Lambda step: Lambda's service errors, with backoff and jitter."""
    return [{
        "ErrorEquals": LAMBDA_SERVICE_ERRORS,
        "IntervalSeconds": retry.interval_s,
        "BackoffRate": retry.backoff_rate,
        "MaxAttempts": retry.max_attempts,
        "MaxDelaySeconds": retry.max_delay_s,
        "JitterStrategy": retry.jitter,
    }]


def definition(file_processor_arn: str, data_processor_arn: str, topic_arn: str, retry: RetryParams,
               timeout_s: int) -> dict[str, Any]:
    """The Amazon States Language document of dataPipeline (see the module's docstring for its seams)."""
    retries = retry_policy(retry)

    def catch(step: str) -> list[dict[str, Any]]:
        return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{step}Failed"}]

    def failed(step: str) -> dict[str, Any]:
        # The step's name travels with its error: the notification and the execution's failure both say where.
        return {"Type": "Pass", "Parameters": {"step": step, "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
                "ResultPath": "$.failure", "Next": "NotifyFailure"}

    return {
        "Comment": "Take a processed file's record into the database, then notify; a failed step notifies and fails",
        "StartAt": "ProcessFile",
        "TimeoutSeconds": timeout_s,
        "States": {
            "ProcessFile": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": file_processor_arn, "Payload.$": "$"},
                "ResultSelector": {"message.$": "$.Payload.message"}, "ResultPath": "$.processed",
                "Retry": retries, "Catch": catch("ProcessFile"), "Next": "ProcessData",
            },
            "ProcessData": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": data_processor_arn, "Payload": {"pipeline": {
                    "execution.$": "$$.Execution.Name", "message.$": "$.processed.message"}}},
                "ResultSelector": {"record_key.$": "$.Payload.record_key", "deliveries.$": "$.Payload.deliveries"},
                "ResultPath": "$.stored", "Retry": retries, "Catch": catch("ProcessData"), "Next": "Notify",
            },
            "Notify": {
                "Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": topic_arn, "Subject": SUCCEEDED_SUBJECT, "Message.$": "States.JsonToString($.stored)",
                               "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "pipeline-succeeded"}}},
                "ResultPath": None, "OutputPath": "$.stored",
                "Retry": [{"ErrorEquals": ["States.TaskFailed"], **_retry_timing(retry)}], "End": True,
            },
            "ProcessFileFailed": failed("ProcessFile"),
            "ProcessDataFailed": failed("ProcessData"),
            "NotifyFailure": {
                "Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": topic_arn, "Subject": FAILED_SUBJECT, "Message.$": "States.JsonToString($.failure)",
                               "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "pipeline-failed"}}},
                "ResultPath": None, "Retry": [{"ErrorEquals": ["States.TaskFailed"], **_retry_timing(retry)}],
                "Next": "Failed",
            },
            "Failed": {"Type": "Fail", "ErrorPath": "$.failure.error", "CausePath": "$.failure.cause"},
        },
    }


def _retry_timing(retry: RetryParams) -> dict[str, Any]:
    return {key: value for key, value in retry_policy(retry)[0].items() if key != "ErrorEquals"}


def build(settings: Settings, functions: dict[str, LambdaFunction], topic: aws.sns.Topic,
          kms_key_arn: pulumi.Input[str], account_id: pulumi.Input[str], *, rule: aws.cloudwatch.EventRule,
          bus: aws.cloudwatch.EventBus, alarm_topic_arn: pulumi.Input[str],
          target_args: dict[str, Any]) -> aws.sfn.StateMachine:
    """The state machine with its role and logs, started by ``rule``; alarms on failed and timed-out executions."""
    region = settings.params.aws_region
    machine_name = settings.name("data-pipeline")
    machine_arn = pulumi.Output.concat("arn:aws:states:", region, ":", account_id, ":stateMachine:", machine_name)
    # The ARNs the definition invokes (the live alias where there is one), and nothing else.
    invoked = [functions[key].target_arn for key in ("file-processor", "data-processor")]
    role = aws.iam.Role(
        "pipeline-role",
        name=settings.name("pipeline-role"),
        # Only this account's data pipeline may assume the role (the confused deputy).
        assume_role_policy=iam.assume_role("states.amazonaws.com", condition={
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnEquals": {"aws:SourceArn": machine_arn},
        }),
        tags=settings.tags,
    )
    logs = aws.cloudwatch.LogGroup(
        "pipeline-logs", name=f"/aws/vendedlogs/states/{machine_name}",
        retention_in_days=settings.params.log_retention_days, tags=settings.tags)
    statements = [
        iam.statement("InvokeSteps", ["lambda:InvokeFunction"], invoked),
        iam.statement("Notify", ["sns:Publish"], [topic.arn]),
        iam.statement("XRayWrite", ["xray:PutTraceSegments", "xray:PutTelemetryRecords",
                                    "xray:GetSamplingRules", "xray:GetSamplingTargets"], ["*"]),
        iam.statement("LogDelivery", sorted(a for a in iam.STAR_RESOURCE_ACTIONS if a.startswith("logs:")), ["*"]),
    ]
    policy = aws.iam.RolePolicy(
        "pipeline-policy",
        name="data-pipeline-least-privilege",
        role=role.id,
        policy=iam.document(statements + iam.key_statements(statements, kms_key_arn, region)),
    )
    machine = aws.sfn.StateMachine(
        "data-pipeline",
        name=machine_name,
        role_arn=role.arn,
        type="STANDARD",
        definition=pulumi.Output.all(*invoked, topic.arn).apply(lambda arns: json.dumps(definition(
            arns[0], arns[1], arns[2], settings.params.pipeline_retry, settings.params.pipeline.timeout_s))),
        logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
            log_destination=logs.arn.apply(lambda arn: f"{arn}:*"),
            include_execution_data=False,   # payloads may carry user data; keep them out of logs
            level="ERROR",
        ),
        tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
        tags=settings.tags,
        opts=pulumi.ResourceOptions(depends_on=[policy]),
    )
    _trigger(settings, machine, rule, bus, target_args)
    _alarms(settings, machine, alarm_topic_arn)
    return machine


def _trigger(settings: Settings, machine: aws.sfn.StateMachine, rule: aws.cloudwatch.EventRule,
             bus: aws.cloudwatch.EventBus, target_args: dict[str, Any]) -> None:
    """The file-processed rule starts one execution per event, through a role scoped to this state machine."""
    role = aws.iam.Role(
        "pipeline-start-role",
        name=settings.name("pipeline-start-role"),
        # Only this rule may assume it (EventBridge names the rule as the source).
        assume_role_policy=iam.assume_role("events.amazonaws.com", condition={
            "ArnEquals": {"aws:SourceArn": rule.arn}}),
        tags=settings.tags,
    )
    aws.iam.RolePolicy(
        "pipeline-start-policy",
        name="start-data-pipeline",
        role=role.id,
        policy=iam.document([iam.statement("StartPipeline", ["states:StartExecution"], [machine.arn])]),
    )
    aws.cloudwatch.EventTarget(
        "file-processed-to-pipeline",
        rule=rule.name,
        event_bus_name=bus.name,
        arn=machine.arn,
        role_arn=role.arn,
        **target_args,
    )


def _alarms(settings: Settings, machine: aws.sfn.StateMachine, alarm_topic_arn: pulumi.Input[str]) -> None:
    """ExecutionsFailed and ExecutionsTimedOut (AWS/States, by state machine): any one in a period alarms."""
    a = settings.params.alarms
    for metric, suffix in (("ExecutionsFailed", "failed"), ("ExecutionsTimedOut", "timed-out")):
        aws.cloudwatch.MetricAlarm(
            f"pipeline-executions-{suffix}",
            name=settings.name(f"pipeline-executions-{suffix}"),
            alarm_description=f"dataPipeline: an execution {suffix.replace('-', ' ')} (AWS/States {metric})",
            namespace="AWS/States",
            metric_name=metric,
            dimensions={"StateMachineArn": machine.arn},
            statistic="Sum",
            period=a.period_s,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[alarm_topic_arn],
            ok_actions=[alarm_topic_arn],
            tags=settings.tags,
        )

"""The compute stack: six functions and everything that connects them.

``build(settings)`` declares every resource and returns the stack outputs. ``__main__.py``
exports them for ``pulumi up``; the offline plan runs the same function under Pulumi's mocks.
"""
from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import artifacts, foundation_refs, pipeline, specs
from infra.components import DeadLetterQueue, LambdaFunction, QueueWithDlq, iam
from infra.components.function import FunctionArgs
from infra.config import Settings
from infra.environment import METRICS_NAMESPACE, function_environment

# The names the outputs must carry (a public contract: notebooks, CLI and local env read them).
OUTPUT_NAMES = (
    "apiProcessorArn", "dataProcessorArn", "schedulerArn", "fileProcessorArn", "authHandlerArn",
    "notificationHandlerArn", "apiProcessorFunctionUrl", "taskQueueUrl", "taskQueueArn",
    "notificationQueueUrl", "notificationsTopicArn", "dataPipelineArn",
)
FILE_PROCESSED_SOURCE = "workbook.file-processor"
FILE_PROCESSED_DETAIL_TYPE = "FileProcessed"


def build(settings: Settings) -> dict[str, pulumi.Output[Any]]:
    """Declare the compute stack for one environment; return its outputs."""
    p = settings.params
    tags = settings.tags
    base = foundation_refs.read(settings)
    kms = base.kms_key_arn
    account_id = aws.get_caller_identity_output().account_id

    # -- topics ------------------------------------------------------------------------------
    alarms_topic = aws.sns.Topic(
        "alarms", name=settings.name("alarms"), kms_master_key_id=kms, tags=tags)
    notifications_topic = aws.sns.Topic(
        "notifications", name=settings.name("notifications"), kms_master_key_id=kms,
        tracing_config="Active", tags=tags)

    # -- queues ------------------------------------------------------------------------------
    task_queue = QueueWithDlq("task", settings, p.task_queue, kms, alarms_topic.arn)
    notification_queue = QueueWithDlq("notification", settings, p.notification_queue, kms, alarms_topic.arn)
    events_dlq = DeadLetterQueue("events-dlq", settings, kms, alarms_topic.arn)

    # SNS -> notification queue (fan-out); the queue accepts only this topic.
    _allow_sends("notification-queue-policy", notification_queue, "sns.amazonaws.com", [notifications_topic.arn],
                 "FromNotificationsTopic")
    aws.sns.TopicSubscription(
        "notifications-to-queue",
        topic=notifications_topic.arn,
        protocol="sqs",
        endpoint=notification_queue.arn,
        raw_message_delivery=False,   # the handler reads the SNS envelope, as with a direct subscription
    )

    # -- event bus (processed-file events land here) -----------------------------------------
    bus = aws.cloudwatch.EventBus("bus", name=settings.name("bus"), tags=tags)

    # -- layers --------------------------------------------------------------------------------
    architectures = sorted({settings.function(key).architecture for key in specs.FUNCTION_KEYS})
    layers = {
        arch: aws.lambda_.LayerVersion(
            f"common-layer-{arch}",
            layer_name=settings.name(f"common-{arch}"),
            description="Shared handler code (common/) and third-party dependencies",
            code=artifacts.layer_code(arch),
            compatible_runtimes=[specs.RUNTIME],
            compatible_architectures=[arch],
        )
        for arch in architectures
    }

    refs = {
        "task_queue_url": task_queue.url,
        "notifications_topic_arn": notifications_topic.arn,
        "uploads_bucket": base.uploads_bucket_name,
        "processed_bucket": base.processed_bucket_name,
        "event_bus_name": bus.name,
        "db_secret_arn": base.db_secret_arn,
        "jwt_secret_arn": base.jwt_secret_arn,
        "api_keys_secret_arn": base.api_keys_secret_arn,
    }
    statements = _statements(settings, base, task_queue, notification_queue, notifications_topic, bus)

    # -- functions -----------------------------------------------------------------------------
    functions: dict[str, LambdaFunction] = {}
    for key in specs.FUNCTION_KEYS:
        fn = settings.function(key)
        layer_arns: list[pulumi.Input[str]] = [layers[fn.architecture].arn]
        if key == "auth-handler" and p.region_layer_arn is not None:
            # The Parameters and Secrets extension serves the JWT secret without boto3 on the hot path.
            layer_arns.append(getattr(p.region_layer_arn, fn.architecture))
        on_failure = None
        if fn.spec.is_async:
            on_failure = DeadLetterQueue(f"{key}-failures", settings, kms, alarms_topic.arn).arn
        functions[key] = LambdaFunction(
            key,
            FunctionArgs(
                settings=settings,
                function=fn,
                code=artifacts.function_code(fn.spec.module),
                layers=layer_arns,
                kms_key_arn=kms,
                alarm_topic_arn=alarms_topic.arn,
                environment=function_environment(settings, key, refs),
                statements=statements[key],
                subnet_ids=base.private_subnet_ids if fn.spec.in_vpc else None,
                security_group_ids=[base.lambda_security_group_id] if fn.spec.in_vpc else None,
                vpc_id=base.vpc_id if fn.spec.in_vpc else None,
                account_id=account_id if fn.spec.in_vpc else None,
                on_failure_arn=on_failure,
            ),
        )

    # -- event sources -------------------------------------------------------------------------
    for queue_name, queue, queue_params, key in (
        ("task", task_queue, p.task_queue, "data-processor"),
        ("notification", notification_queue, p.notification_queue, "notification-handler"),
    ):
        aws.lambda_.EventSourceMapping(
            f"{queue_name}-to-{key}",
            event_source_arn=queue.arn,
            function_name=functions[key].target_arn,
            batch_size=queue_params.batch_size,
            maximum_batching_window_in_seconds=queue_params.batching_window_s,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=queue_params.max_concurrency),
            tags=tags,
        )

    _s3_trigger(settings, base, functions["file-processor"], account_id)
    rule_arns = _schedules(settings, functions["scheduler"], events_dlq)
    processed_rule = _processed_file_rule(settings, bus, notifications_topic, events_dlq)
    rule_arns.append(processed_rule.arn)
    _allow_events_to_dlq(events_dlq, rule_arns)
    api = _http_api(settings, functions["api-processor"], functions["auth-handler"])
    function_url = _function_url(settings, functions["api-processor"])
    # dataPipeline (infra/pipeline.py): started by the file-processed rule, one execution per processed file.
    data_pipeline = pipeline.build(settings, functions, notifications_topic, kms, account_id, rule=processed_rule,
                                   bus=bus, alarm_topic_arn=alarms_topic.arn,
                                   target_args=_target_args(settings, events_dlq))
    dashboard = _dashboard(settings, task_queue, notification_queue)

    outputs: dict[str, pulumi.Output[Any]] = {
        f"{specs.spec(key).camel}Arn": functions[key].arn for key in specs.FUNCTION_KEYS
    }
    outputs.update({
        "apiProcessorFunctionUrl": function_url.function_url,
        "taskQueueUrl": task_queue.url,
        "taskQueueArn": task_queue.arn,
        "taskDlqArn": task_queue.dlq_arn,
        "notificationQueueUrl": notification_queue.url,
        "notificationQueueArn": notification_queue.arn,
        "notificationDlqArn": notification_queue.dlq_arn,
        "notificationsTopicArn": notifications_topic.arn,
        "alarmsTopicArn": alarms_topic.arn,
        "dataPipelineArn": data_pipeline.arn,
        "httpApiEndpoint": api.api_endpoint,
        "eventBusName": bus.name,
        "dashboardName": dashboard.dashboard_name,
        "uploadsBucketName": base.uploads_bucket_name,
        "processedBucketName": base.processed_bucket_name,
        "functionNames": pulumi.Output.from_input({key: functions[key].function_name for key in specs.FUNCTION_KEYS}),
    })
    return outputs


# ---------------------------------------------------------------------------------------------
def _statements(settings: Settings, base: foundation_refs.Foundation, task_queue: QueueWithDlq,
                notification_queue: QueueWithDlq, topic: aws.sns.Topic,
                bus: aws.cloudwatch.EventBus) -> dict[str, list[dict[str, Any]]]:
    """Each function's permissions, on the exact ARNs it touches.

    The stack key's statements follow from these (``iam.key_statements``, in the component).
    An event source mapping polls with the function's role: ReceiveMessage, DeleteMessage and
    GetQueueAttributes, and nothing else (the handlers never change a message's visibility).
    """
    st = iam.statement
    read_secret = lambda arn: st("ReadOwnSecret", ["secretsmanager:GetSecretValue"], [arn])
    consume = lambda queue: st(
        "ConsumeQueue",
        ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        [queue.arn])
    publish = st("PublishNotifications", ["sns:Publish"], [topic.arn])
    prefix = settings.params.uploads.prefix
    return {
        "api-processor": [read_secret(base.db_secret_arn)],
        "data-processor": [read_secret(base.db_secret_arn), consume(task_queue), publish],
        "file-processor": [
            st("ReadUploads", ["s3:GetObject"], [pulumi.Output.concat(base.uploads_bucket_arn, "/", prefix, "*")]),
            st("WriteProcessed", ["s3:PutObject"], [pulumi.Output.concat(base.processed_bucket_arn, "/*")]),
            st("EmitProcessedEvents", ["events:PutEvents"], [bus.arn]),
        ],
        "scheduler": [
            read_secret(base.db_secret_arn),
            st("EnqueueTasks", ["sqs:SendMessage"], [task_queue.arn]),
            publish,
        ],
        "notification-handler": [read_secret(base.api_keys_secret_arn), consume(notification_queue)],
        "auth-handler": [read_secret(base.jwt_secret_arn)],
    }


def _s3_trigger(settings: Settings, base: foundation_refs.Foundation, fn: LambdaFunction,
                account_id: pulumi.Input[str]) -> None:
    """ObjectCreated notifications from the uploads bucket, one rule per suffix under the prefix."""
    uploads = settings.params.uploads
    permission = aws.lambda_.Permission(
        "uploads-invoke-file-processor",
        action="lambda:InvokeFunction",
        function=fn.target_arn,
        principal="s3.amazonaws.com",
        source_arn=base.uploads_bucket_arn,
        # A bucket ARN names no account: without this, a bucket of that name in any account could
        # invoke the function (the confused deputy).
        source_account=account_id,
    )
    aws.s3.BucketNotification(
        "uploads-notifications",
        bucket=base.uploads_bucket_name,
        lambda_functions=[
            aws.s3.BucketNotificationLambdaFunctionArgs(
                id=f"file-processor{suffix.replace('.', '-')}",
                lambda_function_arn=fn.target_arn,
                events=["s3:ObjectCreated:*"],
                filter_prefix=uploads.prefix,
                filter_suffix=suffix,
            )
            for suffix in uploads.suffixes
        ],
        opts=pulumi.ResourceOptions(depends_on=[permission]),
    )


def _target_args(settings: Settings, dlq: DeadLetterQueue) -> dict[str, Any]:
    t = settings.params.event_targets
    return dict(
        retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
            maximum_retry_attempts=t.maximum_retry_attempts,
            maximum_event_age_in_seconds=t.maximum_event_age_s,
        ),
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dlq.arn),
    )


def _schedules(settings: Settings, fn: LambdaFunction, dlq: DeadLetterQueue) -> list[pulumi.Output[str]]:
    """EventBridge schedule rules invoking the scheduler; retries, then the events DLQ.

    The target passes the scheduled event itself (no constant ``input``, which would replace it):
    the handler checks ``source``/``detail-type`` and finds the rule in ``resources``.
    """
    rule_arns = []
    for schedule in settings.params.schedules:
        rule = aws.cloudwatch.EventRule(
            f"schedule-{schedule.name}",
            name=settings.name(f"schedule-{schedule.name}"),
            description=f"Runs the scheduler: {schedule.expression}",
            schedule_expression=schedule.expression,
            state="ENABLED" if schedule.enabled else "DISABLED",
            tags=settings.tags,
        )
        aws.cloudwatch.EventTarget(
            f"schedule-{schedule.name}-target",
            rule=rule.name,
            arn=fn.target_arn,
            **_target_args(settings, dlq),
        )
        aws.lambda_.Permission(
            f"schedule-{schedule.name}-invoke",
            action="lambda:InvokeFunction",
            function=fn.target_arn,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
        )
        rule_arns.append(rule.arn)
    return rule_arns


def _processed_file_rule(settings: Settings, bus: aws.cloudwatch.EventBus, topic: aws.sns.Topic,
                         dlq: DeadLetterQueue) -> aws.cloudwatch.EventRule:
    """The event-pattern rule: processed files are announced on the notifications topic."""
    rule = aws.cloudwatch.EventRule(
        "file-processed",
        name=settings.name("file-processed"),
        description="A file was processed: notify subscribers",
        event_bus_name=bus.name,
        event_pattern=json.dumps({"source": [FILE_PROCESSED_SOURCE], "detail-type": [FILE_PROCESSED_DETAIL_TYPE]}),
        tags=settings.tags,
    )
    aws.cloudwatch.EventTarget(
        "file-processed-to-notifications",
        rule=rule.name,
        event_bus_name=bus.name,
        arn=topic.arn,
        **_target_args(settings, dlq),
    )
    aws.sns.TopicPolicy(
        "notifications-from-events",
        arn=topic.arn,
        policy=iam.document([{
            "Sid": "FromFileProcessedRule", "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"}, "Action": ["sns:Publish"],
            "Resource": [topic.arn],
            "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
        }]),
    )
    return rule


def _allow_events_to_dlq(dlq: DeadLetterQueue, rule_arns: list[pulumi.Output[str]]) -> None:
    """EventBridge may dead-letter into the events DLQ, for these rules only (one policy per queue)."""
    _allow_sends("events-dlq-policy", dlq, "events.amazonaws.com", rule_arns, "FromStackRules")


def _allow_sends(name: str, queue: QueueWithDlq | DeadLetterQueue, service: str,
                 source_arns: list[pulumi.Input[str]], sid: str) -> aws.sqs.QueuePolicy:
    """A queue policy: ``service`` may send to ``queue``, only on behalf of ``source_arns``."""
    return aws.sqs.QueuePolicy(
        name,
        queue_url=queue.url,
        policy=iam.document([{
            "Sid": sid, "Effect": "Allow",
            "Principal": {"Service": service}, "Action": ["sqs:SendMessage"],
            "Resource": [queue.arn],
            "Condition": {"ArnEquals": {"aws:SourceArn": source_arns}},
        }]),
    )


def _http_api(settings: Settings, api_fn: LambdaFunction, auth_fn: LambdaFunction) -> aws.apigatewayv2.Api:
    """HTTP API: every route but /health goes through the JWT authorizer."""
    origin = settings.cors_origin
    api = aws.apigatewayv2.Api(
        "http-api",
        name=settings.name("api"),
        protocol_type="HTTP",
        cors_configuration=aws.apigatewayv2.ApiCorsConfigurationArgs(
            allow_origins=[origin],
            allow_methods=["GET", "POST", "PUT", "PATCH", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-correlation-id"],
            max_age=settings.params.function_url.cors_max_age_s,
        ),
        tags=settings.tags,
    )
    authorizer = aws.apigatewayv2.Authorizer(
        "jwt-authorizer",
        api_id=api.id,
        name="jwt",
        authorizer_type="REQUEST",
        authorizer_uri=auth_fn.invoke_arn,
        authorizer_payload_format_version="2.0",
        enable_simple_responses=True,
        identity_sources=["$request.header.Authorization"],
        # A cached allow outlives the token: it stays usable up to this TTL past its exp (params).
        authorizer_result_ttl_in_seconds=settings.params.http_api.authorizer_cache_ttl_s,
    )
    integration = aws.apigatewayv2.Integration(
        "api-integration",
        api_id=api.id,
        integration_type="AWS_PROXY",
        integration_uri=api_fn.invoke_arn,
        payload_format_version="2.0",
        timeout_milliseconds=min(30_000, settings.function("api-processor").timeout_s * 1000),
    )
    target = integration.id.apply(lambda iid: f"integrations/{iid}")
    aws.apigatewayv2.Route("route-health", api_id=api.id, route_key="GET /health", target=target)
    for route_key, name in (("ANY /items", "items"), ("ANY /items/{id}", "item")):
        aws.apigatewayv2.Route(
            f"route-{name}", api_id=api.id, route_key=route_key, target=target,
            authorization_type="CUSTOM", authorizer_id=authorizer.id,
        )
    access_logs = aws.cloudwatch.LogGroup(
        "api-access-logs", name=f"/aws/apigateway/{settings.name('api')}",
        retention_in_days=settings.params.log_retention_days, tags=settings.tags)
    aws.apigatewayv2.Stage(
        "api-stage", api_id=api.id, name="$default", auto_deploy=True,
        access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
            destination_arn=access_logs.arn,
            format=json.dumps({
                "requestId": "$context.requestId", "routeKey": "$context.routeKey",
                "status": "$context.status", "latencyMs": "$context.responseLatency",
                "integrationLatencyMs": "$context.integrationLatency",
                "authorizerError": "$context.authorizer.error",
            }),
        ),
        tags=settings.tags,
    )
    for name, fn in (("api", api_fn), ("authorizer", auth_fn)):
        aws.lambda_.Permission(
            f"http-api-invoke-{name}",
            action="lambda:InvokeFunction",
            function=fn.target_arn,
            principal="apigateway.amazonaws.com",
            source_arn=api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
        )
    return api


def _function_url(settings: Settings, fn: LambdaFunction) -> aws.lambda_.FunctionUrl:
    url = settings.params.function_url
    return aws.lambda_.FunctionUrl(
        "api-processor-url",
        function_name=fn.function.name,
        qualifier=fn.qualifier,
        authorization_type=url.auth_type,
        cors=aws.lambda_.FunctionUrlCorsArgs(
            allow_origins=[settings.cors_origin],
            allow_methods=["GET", "POST", "PUT", "PATCH"],
            allow_headers=["authorization", "content-type", "x-correlation-id"],
            max_age=url.cors_max_age_s,
        ),
    )


def _dashboard(settings: Settings, task_queue: QueueWithDlq,
               notification_queue: QueueWithDlq) -> aws.cloudwatch.Dashboard:
    """Per function: invocations, errors, duration p50/p90/p99, throttles, concurrency, cold starts."""
    region = settings.params.aws_region
    names = {key: settings.function_name(key) for key in specs.FUNCTION_KEYS}

    def lambda_metric(metric: str, stat: str) -> list[list[Any]]:
        return [["AWS/Lambda", metric, "FunctionName", name, {"stat": stat, "label": key}]
                for key, name in names.items()]

    def widget(title: str, metrics: list, x: int, y: int, unit: str) -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
            "title": title, "region": region, "view": "timeSeries", "stacked": False, "period": 60,
            "metrics": metrics, "yAxis": {"left": {"label": unit, "showUnits": False}}}}

    widgets = [
        widget("Invocations", lambda_metric("Invocations", "Sum"), 0, 0, "count"),
        widget("Errors", lambda_metric("Errors", "Sum"), 12, 0, "count"),
        widget("Throttles", lambda_metric("Throttles", "Sum"), 0, 6, "count"),
        widget("Concurrent executions", lambda_metric("ConcurrentExecutions", "Maximum"), 12, 6, "count"),
        widget("Cold starts (Powertools ColdStart)", [
            [METRICS_NAMESPACE, "ColdStart", "function_name", name, "service", key, {"stat": "Sum", "label": key}]
            for key, name in names.items()], 0, 30, "count"),
    ]
    for index, pct in enumerate(("p50", "p90", "p99")):
        widgets.append(widget(f"Duration {pct}", lambda_metric("Duration", pct), 12 * (index % 2), 12 + 6 * (index // 2), "ms"))

    def body(queue_names: list[str]) -> str:
        queue_widget = widget("Age of oldest message", [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q, {"stat": "Maximum"}] for q in queue_names[:2]
        ], 12, 18, "s")
        dlq_widget = widget("DLQ depth", [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q, {"stat": "Maximum"}] for q in queue_names[2:]
        ], 12, 30, "messages")
        return json.dumps({"widgets": widgets + [queue_widget, dlq_widget]})

    return aws.cloudwatch.Dashboard(
        "dashboard",
        dashboard_name=settings.name("overview"),
        dashboard_body=pulumi.Output.all(
            task_queue.queue.name, notification_queue.queue.name, task_queue.dlq.name, notification_queue.dlq.name,
        ).apply(body),
    )

"""Queues, topics, event sources, EventBridge and the HTTP front door."""
from __future__ import annotations

import json

from infra import specs
from tests.infra.conftest import QUEUE, by_name, compute


def queues(plan):
    return by_name(plan, QUEUE)


def test_task_and_notification_queues_each_have_a_dlq_with_env_max_receive(plan, settings):
    qs = queues(plan)
    for queue, params in (("task", settings.params.task_queue), ("notification", settings.params.notification_queue)):
        inputs = qs[settings.name(queue)]["inputs"]
        redrive = json.loads(inputs["redrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(settings.name(f"{queue}-dlq"))
        assert redrive["maxReceiveCount"] == params.max_receive_count
        assert settings.name(f"{queue}-dlq") in qs


def test_max_receive_count_differs_by_environment():
    from infra import config

    counts = {env: config.load(env).params.task_queue.max_receive_count for env in ("dev", "staging", "prod")}
    assert counts["dev"] < counts["prod"]


def test_visibility_timeout_at_least_six_times_consumer_timeout(plan, settings):
    qs = queues(plan)
    for queue, consumer in (("task", "data-processor"), ("notification", "notification-handler")):
        visibility = qs[settings.name(queue)]["inputs"]["visibilityTimeoutSeconds"]
        assert visibility >= 6 * settings.function(consumer).timeout_s


def test_queues_are_kms_encrypted_with_retention(plan, settings):
    kms = plan.foundation_outputs["kmsKeyArn"]
    for name, queue in queues(plan).items():
        assert queue["inputs"]["kmsMasterKeyId"] == kms, name
        assert queue["inputs"]["messageRetentionSeconds"] >= 60, name
    assert queues(plan)[settings.name("task")]["inputs"]["messageRetentionSeconds"] == \
        settings.params.task_queue.message_retention_s


def test_dlq_accepts_redrive_only_from_its_queue(plan, settings):
    policies = compute(plan, "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy")
    assert len(policies) == 2
    for policy in policies:
        body = json.loads(policy["inputs"]["redriveAllowPolicy"])
        assert body["redrivePermission"] == "byQueue" and len(body["sourceQueueArns"]) == 1


def test_data_processor_event_source_mapping_per_environment(plan, settings):
    mappings = {m["name"]: m["inputs"] for m in compute(plan, "aws:lambda/eventSourceMapping:EventSourceMapping")}
    task = mappings["task-to-data-processor"]
    params = settings.params.task_queue
    assert task["eventSourceArn"].endswith(settings.name("task"))
    assert task["batchSize"] == params.batch_size
    assert task["maximumBatchingWindowInSeconds"] == params.batching_window_s
    assert task["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert task["scalingConfig"] == {"maximumConcurrency": params.max_concurrency}
    assert settings.function_name("data-processor") in task["functionName"]


def test_notification_handler_reads_the_topic_through_its_queue(plan, settings):
    subscriptions = compute(plan, "aws:sns/topicSubscription:TopicSubscription")
    assert len(subscriptions) == 1
    sub = subscriptions[0]["inputs"]
    assert sub["protocol"] == "sqs"
    assert sub["topic"].endswith(settings.name("notifications"))
    assert sub["endpoint"].endswith(settings.name("notification"))
    mappings = {m["name"]: m["inputs"] for m in compute(plan, "aws:lambda/eventSourceMapping:EventSourceMapping")}
    assert mappings["notification-to-notification-handler"]["functionResponseTypes"] == ["ReportBatchItemFailures"]
    policy = json.loads(by_name(plan, "aws:sqs/queuePolicy:QueuePolicy")["notification-queue-policy"]["inputs"]["policy"])
    (source,) = policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert source.endswith(settings.name("notifications"))


def test_topics_are_kms_encrypted(plan, settings):
    topics = by_name(plan, "aws:sns/topic:Topic")
    assert set(topics) == {settings.name("notifications"), settings.name("alarms")}
    for topic in topics.values():
        assert topic["inputs"]["kmsMasterKeyId"] == plan.foundation_outputs["kmsKeyArn"]


def test_uploads_trigger_file_processor_with_prefix_and_suffix_filters(plan, settings):
    notes = compute(plan, "aws:s3/bucketNotification:BucketNotification")
    assert len(notes) == 1
    inputs = notes[0]["inputs"]
    assert inputs["bucket"] == plan.foundation_outputs["uploadsBucketName"]
    rules = inputs["lambdaFunctions"]
    assert {r["filterSuffix"] for r in rules} == set(settings.params.uploads.suffixes)
    for rule in rules:
        assert rule["filterPrefix"] == settings.params.uploads.prefix
        assert rule["events"] == ["s3:ObjectCreated:*"]
        assert settings.function_name("file-processor") in rule["lambdaFunctionArn"]


def test_schedule_rules_invoke_the_scheduler_with_env_expressions(plan, settings):
    rules = by_name(plan, "aws:cloudwatch/eventRule:EventRule")
    for schedule in settings.params.schedules:
        rule = rules[settings.name(f"schedule-{schedule.name}")]["inputs"]
        assert rule["scheduleExpression"] == schedule.expression
    targets = [t["inputs"] for t in compute(plan, "aws:cloudwatch/eventTarget:EventTarget")
               if settings.function_name("scheduler") in t["inputs"]["arn"]]
    assert len(targets) == len(settings.params.schedules)


def test_schedules_differ_between_dev_and_prod():
    from infra import config

    assert [s.expression for s in config.load("dev").params.schedules] != \
        [s.expression for s in config.load("prod").params.schedules]


def test_event_pattern_rule_on_processed_files_targets_notifications(plan, settings):
    rule = by_name(plan, "aws:cloudwatch/eventRule:EventRule")[settings.name("file-processed")]["inputs"]
    pattern = json.loads(rule["eventPattern"])
    assert pattern == {"source": ["workbook.file-processor"], "detail-type": ["FileProcessed"]}
    assert rule["eventBusName"] == settings.name("bus")


def test_every_event_target_has_retry_policy_and_dlq(plan, settings):
    targets = compute(plan, "aws:cloudwatch/eventTarget:EventTarget")
    assert targets
    for target in targets:
        inputs = target["inputs"]
        assert inputs["retryPolicy"]["maximumRetryAttempts"] == settings.params.event_targets.maximum_retry_attempts
        assert inputs["retryPolicy"]["maximumEventAgeInSeconds"] == settings.params.event_targets.maximum_event_age_s
        assert inputs["deadLetterConfig"]["arn"].endswith(settings.name("events-dlq"))


def test_http_api_with_auth_handler_as_lambda_authorizer(plan, settings):
    authorizers = compute(plan, "aws:apigatewayv2/authorizer:Authorizer")
    assert len(authorizers) == 1
    auth = authorizers[0]["inputs"]
    assert auth["authorizerType"] == "REQUEST"
    assert auth["enableSimpleResponses"] is True
    assert auth["authorizerPayloadFormatVersion"] == "2.0"
    assert settings.function_name("auth-handler") in auth["authorizerUri"]
    routes = {r["inputs"]["routeKey"]: r["inputs"] for r in compute(plan, "aws:apigatewayv2/route:Route")}
    assert routes["ANY /items"]["authorizationType"] == "CUSTOM"
    assert routes["ANY /items/{id}"]["authorizationType"] == "CUSTOM"
    assert routes["GET /health"].get("authorizationType") in (None, "NONE")
    integration = compute(plan, "aws:apigatewayv2/integration:Integration")[0]["inputs"]
    assert settings.function_name("api-processor") in integration["integrationUri"]


def test_function_url_cors_limited_to_deploy_domain_and_auth_from_params(plan, settings):
    urls = compute(plan, "aws:lambda/functionUrl:FunctionUrl")
    assert len(urls) == 1
    url = urls[0]["inputs"]
    assert url["authorizationType"] == settings.params.function_url.auth_type == "AWS_IAM"
    assert url["cors"]["allowOrigins"] == [f"https://{settings.params.deploy_domain}"]
    assert url["functionName"] == settings.function_name("api-processor")
    api = compute(plan, "aws:apigatewayv2/api:Api")[0]["inputs"]
    assert api["corsConfiguration"]["allowOrigins"] == [f"https://{settings.params.deploy_domain}"]


def test_function_url_and_http_api_reach_the_live_alias_in_prod(env, plan, settings):
    url = compute(plan, "aws:lambda/functionUrl:FunctionUrl")[0]["inputs"]
    has_pc = settings.function("api-processor").provisioned_concurrency is not None
    assert (url.get("qualifier") == "live") == has_pc
    assert has_pc == (env == "prod")


def test_outputs_carry_exactly_the_contract_names(plan):
    from infra.compute import OUTPUT_NAMES

    assert set(OUTPUT_NAMES) <= set(plan.outputs)
    assert len(OUTPUT_NAMES) == 12
    for name in OUTPUT_NAMES:
        assert plan.outputs[name], name
    assert plan.outputs["apiProcessorFunctionUrl"].startswith("https://")
    for key in specs.FUNCTION_KEYS:
        assert plan.outputs[f"{specs.spec(key).camel}Arn"].endswith(key)


def test_schedule_targets_pass_the_scheduled_event_through(plan, settings):
    # A constant `input` would replace the event, and the scheduler checks source and detail-type.
    for target in compute(plan, "aws:cloudwatch/eventTarget:EventTarget"):
        if settings.function_name("scheduler") in target["inputs"]["arn"]:
            assert "input" not in target["inputs"] and "inputTransformer" not in target["inputs"]

"""Step Functions pipeline, concurrency, alarms and the dashboard."""
from __future__ import annotations

import json

from infra import specs
from tests.infra.conftest import ALARM, FUNCTION, ROLE_POLICY, by_name, compute, policy_of


def definition(plan, settings):
    machine = by_name(plan, "aws:sfn/stateMachine:StateMachine")[settings.name("data-pipeline")]
    return machine["inputs"], json.loads(machine["inputs"]["definition"])


def test_pipeline_runs_file_then_data_then_notification(plan, settings):
    _, body = definition(plan, settings)
    states = body["States"]
    assert body["StartAt"] == "ProcessFile"
    assert states["ProcessFile"]["Next"] == "ProcessData"
    assert states["ProcessData"]["Next"] == "Notify"
    assert settings.function_name("file-processor") in states["ProcessFile"]["Parameters"]["FunctionName"]
    assert settings.function_name("data-processor") in states["ProcessData"]["Parameters"]["FunctionName"]
    assert states["Notify"]["Resource"] == "arn:aws:states:::sns:publish"


def test_pipeline_retries_lambda_service_errors_with_backoff_and_jitter(plan, settings):
    _, body = definition(plan, settings)
    r = settings.params.pipeline_retry
    for state in ("ProcessFile", "ProcessData"):
        retry = body["States"][state]["Retry"][0]
        assert "Lambda.ServiceException" in retry["ErrorEquals"]
        assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
        assert (retry["IntervalSeconds"], retry["BackoffRate"], retry["MaxAttempts"], retry["JitterStrategy"]) == \
            (r.interval_s, r.backoff_rate, r.max_attempts, r.jitter)


def test_pipeline_catches_to_a_failure_notification(plan, settings):
    _, body = definition(plan, settings)
    for state in ("ProcessFile", "ProcessData"):
        (catch,) = body["States"][state]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        # A Pass state names the failed step, then the failure notification.
        assert body["States"][catch["Next"]]["Parameters"]["step"] == state
        assert body["States"][catch["Next"]]["Next"] == "NotifyFailure"
    assert body["States"]["NotifyFailure"]["Next"] == "Failed"
    assert body["States"]["Failed"]["Type"] == "Fail"


def test_pipeline_logging_and_tracing_enabled(plan, settings):
    inputs, _ = definition(plan, settings)
    assert inputs["tracingConfiguration"] == {"enabled": True}
    assert inputs["loggingConfiguration"]["level"] in ("ERROR", "ALL")
    assert inputs["loggingConfiguration"]["logDestination"].endswith(":*")
    assert inputs["loggingConfiguration"]["includeExecutionData"] is False


def test_reserved_concurrency_per_environment(plan, settings):
    fns = by_name(plan, FUNCTION)
    for key in specs.FUNCTION_KEYS:
        reserved = fns[settings.function_name(key)]["inputs"]["reservedConcurrentExecutions"]
        expected = settings.function(key).reserved_concurrency
        assert reserved == (expected if expected is not None else -1)
    critical = [s.key for s in specs.FUNCTIONS if s.critical]
    assert all(settings.function(k).reserved_concurrency for k in critical)


def test_dev_concurrency_is_lower_than_prod():
    from infra import config

    dev, prod = config.load("dev"), config.load("prod")
    for key in ("api-processor", "data-processor", "auth-handler"):
        assert dev.function(key).reserved_concurrency < prod.function(key).reserved_concurrency


def test_prod_provisioned_concurrency_on_live_alias_with_target_tracking(env, plan, settings):
    aliases = compute(plan, "aws:lambda/alias:Alias", may_be_empty=env != "prod")
    configs = compute(plan, "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig", may_be_empty=env != "prod")
    targets = compute(plan, "aws:appautoscaling/target:Target", may_be_empty=env != "prod")
    policies = compute(plan, "aws:appautoscaling/policy:Policy", may_be_empty=env != "prod")
    provisioned = [k for k in specs.FUNCTION_KEYS if settings.function(k).provisioned_concurrency]
    if env != "prod":
        assert not (aliases or configs or targets or policies or provisioned)
        return
    assert provisioned
    assert {a["inputs"]["name"] for a in aliases} == {"live"}
    assert len(aliases) == len(configs) == len(targets) == len(policies) == len(provisioned)
    for config in configs:
        assert config["inputs"]["qualifier"] == "live"
    for target in targets:
        t = target["inputs"]
        assert t["scalableDimension"] == "lambda:function:ProvisionedConcurrency"
        assert t["resourceId"].endswith(":live")
        key = t["resourceId"].split(":")[1].removeprefix(settings.prefix + "-")
        pc = settings.function(key).provisioned_concurrency
        assert (t["minCapacity"], t["maxCapacity"]) == (pc.min_capacity, pc.max_capacity)
    for policy in policies:
        config = policy["inputs"]["targetTrackingScalingPolicyConfiguration"]
        assert policy["inputs"]["policyType"] == "TargetTrackingScaling"
        assert config["predefinedMetricSpecification"]["predefinedMetricType"] == "LambdaProvisionedConcurrencyUtilization"
    # AND the traffic reaches the warm alias: the HTTP API's integration and authorizer, their invoke
    # permissions and the function URL all name `live` (else the provisioned environments sit idle)
    live = {key: f"function:{settings.function_name(key)}:live" for key in provisioned}
    if "api-processor" in live:
        (integration,) = compute(plan, "aws:apigatewayv2/integration:Integration")
        assert integration["inputs"]["integrationUri"].endswith(live["api-processor"] + "/invocations")
        (url,) = compute(plan, "aws:lambda/functionUrl:FunctionUrl")
        assert url["inputs"]["qualifier"] == "live"
    if "auth-handler" in live:
        (authorizer,) = compute(plan, "aws:apigatewayv2/authorizer:Authorizer")
        assert authorizer["inputs"]["authorizerUri"].endswith(live["auth-handler"] + "/invocations")
    permissions = {p["name"]: p["inputs"]["function"] for p in compute(plan, "aws:lambda/permission:Permission")}
    for name, key in (("http-api-invoke-api", "api-processor"), ("http-api-invoke-authorizer", "auth-handler")):
        if key in live:
            assert permissions[name].endswith(live[key]), (name, permissions[name])


def alarms(plan):
    return by_name(plan, ALARM)


def test_every_function_alarms_on_error_rate_throttles_and_p99(plan, settings):
    found = alarms(plan)
    a = settings.params.alarms
    for key in specs.FUNCTION_KEYS:
        rate = found[settings.name(f"{key}-error-rate")]["inputs"]
        expression = [q for q in rate["metricQueries"] if q.get("expression")][0]
        assert "errors" in expression["expression"] and "invocations" in expression["expression"]
        assert rate["threshold"] == a.error_rate_pct
        assert found[settings.name(f"{key}-throttles")]["inputs"]["metricName"] == "Throttles"
        p99 = found[settings.name(f"{key}-duration-p99")]["inputs"]
        assert p99["extendedStatistic"] == "p99"
        assert p99["threshold"] == settings.function(key).timeout_s * 1000 * a.duration_p99_pct_of_timeout / 100


def test_dlq_depth_and_oldest_message_alarms(plan, settings):
    found = alarms(plan)
    for queue in ("task", "notification"):
        depth = found[settings.name(f"{queue}-dlq-depth")]["inputs"]
        assert depth["threshold"] == 0 and depth["comparisonOperator"] == "GreaterThanThreshold"
        assert depth["dimensions"] == {"QueueName": settings.name(f"{queue}-dlq")}
        age = found[settings.name(f"{queue}-oldest-age")]["inputs"]
        assert age["metricName"] == "ApproximateAgeOfOldestMessage"
    for key in ("file-processor", "scheduler", "notification-handler"):
        assert settings.name(f"{key}-failures-depth") in found
    assert settings.name("events-dlq-depth") in found


def test_alarm_actions_go_to_the_alarms_topic(plan, settings):
    topic = plan.outputs["alarmsTopicArn"]
    for name, alarm in alarms(plan).items():
        assert alarm["inputs"]["alarmActions"] == [topic], name


def test_dashboard_has_the_per_function_widgets(plan, settings):
    dashboards = compute(plan, "aws:cloudwatch/dashboard:Dashboard")
    assert len(dashboards) == 1
    body = json.loads(dashboards[0]["inputs"]["dashboardBody"])
    titles = {w["properties"]["title"] for w in body["widgets"]}
    for title in ("Invocations", "Errors", "Throttles", "Concurrent executions", "Duration p50", "Duration p90",
                  "Duration p99", "Cold starts (Powertools ColdStart)"):
        assert title in titles
    invocations = [w for w in body["widgets"] if w["properties"]["title"] == "Invocations"][0]
    assert {m[3] for m in invocations["properties"]["metrics"]} == {settings.function_name(k) for k in specs.FUNCTION_KEYS}


# -- dataPipeline: its trigger, time budget and alarms (infra/pipeline.py) -----------------------
def test_the_file_processed_rule_starts_the_pipeline_with_retries_and_the_events_dlq(plan, settings):
    # GIVEN the plan's EventBridge targets
    targets = [t["inputs"] for t in compute(plan, "aws:cloudwatch/eventTarget:EventTarget")]
    (target,) = [t for t in targets if t["arn"] == plan.outputs["dataPipelineArn"]]
    # THEN the file-processed rule, on the stack's bus, starts the state machine through its own role
    assert target["rule"] == settings.name("file-processed")
    assert target["eventBusName"] == settings.name("bus")
    assert target["roleArn"].endswith(f":role/{settings.name('pipeline-start-role')}")
    t = settings.params.event_targets
    assert target["retryPolicy"] == {"maximumRetryAttempts": t.maximum_retry_attempts,
                                     "maximumEventAgeInSeconds": t.maximum_event_age_s}
    assert target["deadLetterConfig"]["arn"].endswith(f":{settings.name('events-dlq')}")
    # AND the same rule still announces the file on the notifications topic
    assert sum(t["rule"] == settings.name("file-processed") for t in targets) == 2


def test_the_start_role_may_only_start_this_state_machine_and_only_for_this_rule(plan, settings):
    roles = {r["inputs"]["name"]: json.loads(r["inputs"]["assumeRolePolicy"]) for r in compute(plan, "aws:iam/role:Role")}
    (trust,) = roles[settings.name("pipeline-start-role")]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    (source,) = trust["Condition"]["ArnEquals"].values()
    assert source.startswith("arn:aws:events:") and source.endswith(f"/{settings.name('file-processed')}")
    (policy,) = [policy_of(p) for p in compute(plan, ROLE_POLICY) if p["inputs"]["name"] == "start-data-pipeline"]
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["states:StartExecution"]
    assert statement["Resource"] == [plan.outputs["dataPipelineArn"]]


def test_the_pipeline_has_a_time_budget_and_alarms_on_failed_and_timed_out_executions(plan, settings):
    _, body = definition(plan, settings)
    assert body["TimeoutSeconds"] == settings.params.pipeline.timeout_s
    found = alarms(plan)
    for metric, suffix in (("ExecutionsFailed", "failed"), ("ExecutionsTimedOut", "timed-out")):
        alarm = found[settings.name(f"pipeline-executions-{suffix}")]["inputs"]
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == ("AWS/States", metric, "Sum")
        assert alarm["dimensions"] == {"StateMachineArn": plan.outputs["dataPipelineArn"]}
        assert alarm["threshold"] == 0 and alarm["comparisonOperator"] == "GreaterThanThreshold"


def test_the_retry_policy_caps_each_wait_at_max_delay(plan, settings):
    _, body = definition(plan, settings)
    for state in ("ProcessFile", "ProcessData"):
        assert body["States"][state]["Retry"][0]["MaxDelaySeconds"] == settings.params.pipeline_retry.max_delay_s

"""One Lambda function with everything it owns: role, log group, alarms, async config, alias."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import specs
from infra.components import iam
from infra.config import FunctionSettings, Settings

RUNTIME = specs.RUNTIME
LIVE_ALIAS = "live"


@dataclass
class FunctionArgs:
    """What the stack hands to one function."""

    settings: Settings
    function: FunctionSettings
    code: pulumi.Archive
    layers: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    environment: dict[str, pulumi.Input[str]]
    statements: list[dict[str, Any]] = field(default_factory=list)
    subnet_ids: pulumi.Input[Sequence[str]] | None = None
    security_group_ids: pulumi.Input[Sequence[str]] | None = None
    vpc_id: pulumi.Input[str] | None = None             # with the account, conditions the ENI permissions
    account_id: pulumi.Input[str] | None = None
    on_failure_arn: pulumi.Input[str] | None = None     # async invocations' destination


class LambdaFunction(pulumi.ComponentResource):
    """A function with its own role, explicit log group, JSON logs, X-Ray, alarms and (in prod) a live alias."""

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("workbook:compute:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings, fn = args.settings, args.function
        p = settings.params
        tags = {**settings.tags, "Function": fn.key}
        function_name = settings.function_name(fn.key)
        self.function_name = function_name

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=p.log_retention_days,
            tags=tags,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=settings.name(f"{fn.key}-role"),
            assume_role_policy=iam.assume_role("lambda.amazonaws.com"),
            description=f"Execution role of {function_name}",
            tags=tags,
            opts=child,
        )
        statements = [
            iam.statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                          [self.log_group.arn.apply(lambda arn: f"{arn}:*")]),
            iam.statement("XRayWrite", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
            *args.statements,
        ]
        if args.on_failure_arn is not None:
            statements.append(iam.statement("AsyncOnFailure", ["sqs:SendMessage"], [args.on_failure_arn]))
        vpc_config = None
        if fn.spec.in_vpc:
            missing = [name for name in ("subnet_ids", "security_group_ids", "vpc_id", "account_id")
                       if getattr(args, name) is None]
            if missing:
                raise ValueError(f"{fn.key} runs in the VPC: {', '.join(missing)} required")
            # Lambda manages the function's ENIs with its role; the exact EC2 actions replace the
            # managed AWSLambdaVPCAccessExecutionRole, which also grants logs:* on "*".
            statements += iam.vpc_access_statements(p.aws_region, args.account_id, args.vpc_id,
                                                    args.subnet_ids, args.security_group_ids)
            vpc_config = aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids
            )
        # The stack key, per calling service (kms:ViaService): the environment, and each encrypted
        # queue, topic, bucket or secret the statements above reach.
        statements += iam.key_statements(statements, args.kms_key_arn, p.aws_region,
                                         extra=[iam.LAMBDA_ENVIRONMENT_KMS_USE])
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name=f"{fn.key}-least-privilege",
            role=self.role.id,
            policy=iam.document(statements),
            opts=child,
        )
        depends: list[pulumi.Resource] = [self.log_group, self.policy]

        provisioned = fn.provisioned_concurrency
        self.function = aws.lambda_.Function(
            name,
            name=function_name,
            description=fn.spec.description,
            role=self.role.arn,
            runtime=RUNTIME,
            handler=fn.spec.handler,
            code=args.code,
            layers=list(args.layers),
            architectures=[fn.architecture],
            memory_size=fn.memory_mb,
            timeout=fn.timeout_s,
            ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(size=fn.ephemeral_storage_mb),
            reserved_concurrent_executions=fn.reserved_concurrency if fn.reserved_concurrency is not None else -1,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=args.environment),
            kms_key_arn=args.kms_key_arn,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                application_log_level=p.application_log_level,
                system_log_level=p.system_log_level,
                log_group=self.log_group.name,
            ),
            vpc_config=vpc_config,
            publish=provisioned is not None,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.arn = self.function.arn
        self.invoke_arn = self.function.invoke_arn
        # The ARN that callers use: the live alias where one exists.
        self.target_arn: pulumi.Output[str] = self.function.arn
        self.qualifier: str | None = None

        if provisioned is not None:
            self.alias = aws.lambda_.Alias(
                f"{name}-live",
                name=LIVE_ALIAS,
                function_name=self.function.name,
                function_version=self.function.version,
                description="Receives traffic; carries provisioned concurrency",
                opts=child,
            )
            self.provisioned = aws.lambda_.ProvisionedConcurrencyConfig(
                f"{name}-provisioned",
                function_name=self.function.name,
                qualifier=self.alias.name,
                provisioned_concurrent_executions=provisioned.min_capacity,
                # Application Auto Scaling owns the value once deployed.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["provisionedConcurrentExecutions"]),
            )
            resource_id = pulumi.Output.concat("function:", self.function.name, ":", self.alias.name)
            self.scaling_target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                service_namespace="lambda",
                scalable_dimension="lambda:function:ProvisionedConcurrency",
                resource_id=resource_id,
                min_capacity=provisioned.min_capacity,
                max_capacity=provisioned.max_capacity,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.provisioned]),
            )
            self.scaling_policy = aws.appautoscaling.Policy(
                f"{name}-scaling-policy",
                name=settings.name(f"{fn.key}-pc-utilization"),
                policy_type="TargetTrackingScaling",
                service_namespace=self.scaling_target.service_namespace,
                scalable_dimension=self.scaling_target.scalable_dimension,
                resource_id=self.scaling_target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=provisioned.target_utilization,
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type="LambdaProvisionedConcurrencyUtilization",
                    ),
                ),
                opts=child,
            )
            self.target_arn = self.alias.arn
            self.invoke_arn = self.alias.invoke_arn
            self.qualifier = LIVE_ALIAS

        if args.on_failure_arn is not None:
            self.invoke_config = aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-async",
                function_name=self.function.name,
                qualifier=self.qualifier,
                maximum_retry_attempts=p.async_invoke.maximum_retry_attempts,
                maximum_event_age_in_seconds=p.async_invoke.maximum_event_age_s,
                destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                    on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                        destination=args.on_failure_arn,
                    ),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
            )

        self.alarms = self._alarms(name, settings, fn, function_name, args.alarm_topic_arn, tags)
        self.register_outputs({
            "arn": self.arn,
            "target_arn": self.target_arn,
            "log_group": self.log_group.name,
            "role_arn": self.role.arn,
        })

    def _alarms(self, name: str, settings: Settings, fn: FunctionSettings, function_name: str,
                topic_arn: pulumi.Input[str], tags: dict[str, str]) -> list[aws.cloudwatch.MetricAlarm]:
        """Error rate (metric math), throttles, and p99 duration as a share of the timeout."""
        a = settings.params.alarms
        child = pulumi.ResourceOptions(parent=self)
        dims = {"FunctionName": function_name}
        common: dict[str, Any] = dict(
            evaluation_periods=a.evaluation_periods,
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            tags=tags,
            opts=child,
        )

        def metric(query_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/Lambda", metric_name=metric_name, dimensions=dims, period=a.period_s, stat="Sum",
                ),
            )

        error_rate = aws.cloudwatch.MetricAlarm(
            f"{name}-error-rate",
            name=settings.name(f"{fn.key}-error-rate"),
            alarm_description=f"{function_name}: errors above {a.error_rate_pct}% of invocations",
            comparison_operator="GreaterThanThreshold",
            threshold=a.error_rate_pct,
            metric_queries=[
                metric("errors", "Errors"),
                metric("invocations", "Invocations"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="error_rate",
                    expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                    label="Error rate (%)",
                    return_data=True,
                ),
            ],
            **common,
        )
        throttles = aws.cloudwatch.MetricAlarm(
            f"{name}-throttles",
            name=settings.name(f"{fn.key}-throttles"),
            alarm_description=f"{function_name}: throttled; raise reserved concurrency or smooth the load",
            namespace="AWS/Lambda",
            metric_name="Throttles",
            dimensions=dims,
            statistic="Sum",
            period=a.period_s,
            threshold=a.throttles,
            comparison_operator="GreaterThanOrEqualToThreshold",
            **common,
        )
        threshold_ms = fn.timeout_s * 1000 * a.duration_p99_pct_of_timeout / 100
        duration = aws.cloudwatch.MetricAlarm(
            f"{name}-duration-p99",
            name=settings.name(f"{fn.key}-duration-p99"),
            alarm_description=(
                f"{function_name}: p99 duration above {a.duration_p99_pct_of_timeout:g}% "
                f"of the {fn.timeout_s} s timeout"
            ),
            namespace="AWS/Lambda",
            metric_name="Duration",
            dimensions=dims,
            extended_statistic="p99",
            period=a.period_s,
            threshold=threshold_ms,
            comparison_operator="GreaterThanThreshold",
            **common,
        )
        return [error_rate, throttles, duration]

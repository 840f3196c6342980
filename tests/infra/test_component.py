"""The Function component under pulumi's own test harness: assertions inside .apply()."""
from __future__ import annotations

import pulumi
import pytest

from infra import config
from infra.mocks import PlanMocks

pulumi.runtime.set_mocks(PlanMocks("us-east-1"), project="lwb-compute", stack="prod", preview=False)

from infra.components.function import FunctionArgs, LambdaFunction


@pytest.fixture(autouse=True)
def _fresh_mocks():
    # Other modules plan whole stacks in between; each test here starts from its own mocks.
    pulumi.runtime.set_mocks(PlanMocks("us-east-1"), project="lwb-compute", stack="prod", preview=False)


def _function(key: str) -> LambdaFunction:
    settings = config.load("prod")
    return LambdaFunction(key, FunctionArgs(
        settings=settings,
        function=settings.function(key),
        code=pulumi.AssetArchive({}),
        layers=["arn:aws:lambda:us-east-1:123456789012:layer:common:1"],
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:alarms",
        environment={"WORKBOOK_ENV": "prod"},
    ))


@pulumi.runtime.test
def test_component_outputs_point_at_the_live_alias_when_provisioned():
    fn = _function("auth-handler")

    def check(args):
        arn, target, log_group = args
        assert arn.endswith(":function:lwb-prod-p01-auth-handler")
        assert target == arn + ":live"
        assert log_group == "/aws/lambda/lwb-prod-p01-auth-handler"

    return pulumi.Output.all(fn.arn, fn.target_arn, fn.log_group.name).apply(check)


@pulumi.runtime.test
def test_component_without_provisioned_concurrency_targets_the_function():
    fn = _function("notification-handler")

    def check(args):
        arn, target = args
        assert target == arn

    return pulumi.Output.all(fn.arn, fn.target_arn).apply(check)

"""Plans of every environment, computed once per session under Pulumi's mocks."""
from __future__ import annotations

import json
from typing import Any

import pytest

from infra import config
from workbook.deploy.plan import Plan, offline_plan

ENVS = config.ENVIRONMENTS

_PLANS: dict[str, Plan] = {}


def plan_for(env: str) -> Plan:
    if env not in _PLANS:
        _PLANS[env] = offline_plan(env)
    return _PLANS[env]


@pytest.fixture(params=ENVS)
def env(request) -> str:
    return request.param


@pytest.fixture
def plan(env: str) -> Plan:
    return plan_for(env)


@pytest.fixture
def settings(env: str) -> config.Settings:
    return config.load(env)


def compute(plan: Plan, type_token: str, *, may_be_empty: bool = False) -> list[dict[str, Any]]:
    """The compute stack's resources of ``type_token``; never empty unless said (an ``all()`` over nothing proves nothing)."""
    found = plan.of_type(type_token, stack="compute")
    assert found or may_be_empty, f"the {plan.env} plan has no {type_token} in the compute stack"
    return found


def by_name(plan: Plan, type_token: str) -> dict[str, dict[str, Any]]:
    return {r["inputs"].get("name") or r["name"]: r for r in compute(plan, type_token)}


def policy_of(resource: dict[str, Any]) -> dict[str, Any]:
    policy = resource["inputs"]["policy"]
    return json.loads(policy) if isinstance(policy, str) else policy


FUNCTION = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

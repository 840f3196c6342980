"""Policies as tests: least privilege, DLQs, alarms, tracing, naming and tags, for every environment."""
from __future__ import annotations

import importlib
import inspect
import json
from functools import cache

from infra import specs
from infra.components.iam import STAR_RESOURCE_ACTIONS
from infra.foundation_refs import EXPORTS
from tests.infra.conftest import ALARM, FUNCTION, QUEUE, ROLE_POLICY, by_name, compute, policy_of


def identity_policies(plan):
    return [policy_of(p) for p in plan.of_type(ROLE_POLICY)]


def test_no_wildcard_actions_anywhere(plan):
    for doc in identity_policies(plan):
        for statement in doc["Statement"]:
            for action in statement["Action"]:
                assert "*" not in action, statement


def test_star_resource_only_where_aws_requires_it(plan):
    for doc in identity_policies(plan):
        for statement in doc["Statement"]:
            if "*" in statement["Resource"]:
                assert set(statement["Action"]) <= STAR_RESOURCE_ACTIONS, statement


def test_resources_are_exact_arns(plan):
    for doc in identity_policies(plan):
        for statement in doc["Statement"]:
            for resource in statement["Resource"]:
                assert resource == "*" or resource.startswith("arn:aws:"), statement


def test_no_role_attaches_a_managed_policy(plan):
    # AWS managed policies are broader than any one function needs (and cannot be linted from
    # the plan): every permission is an inline statement on an exact ARN.
    assert not plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_every_source_queue_has_a_dlq(plan, settings):
    for name, queue in by_name(plan, QUEUE).items():
        if name.endswith("-dlq") or name.endswith("-failures"):
            assert "redrivePolicy" not in queue["inputs"]
            continue
        redrive = json.loads(queue["inputs"]["redrivePolicy"])
        assert redrive["deadLetterTargetArn"] and redrive["maxReceiveCount"] >= 1


def test_every_dlq_has_a_depth_alarm(plan, settings):
    alarmed = {a["inputs"]["dimensions"]["QueueName"] for a in compute(plan, ALARM)
               if a["inputs"].get("metricName") == "ApproximateNumberOfMessagesVisible"}
    dlqs = {n for n in by_name(plan, QUEUE) if n.endswith("-dlq") or n.endswith("-failures")}
    assert dlqs and dlqs <= alarmed


def test_every_function_has_alarms_log_group_and_tracing(plan, settings):
    alarm_names = set(by_name(plan, ALARM))
    groups = set(by_name(plan, "aws:cloudwatch/logGroup:LogGroup"))
    for name, fn in by_name(plan, FUNCTION).items():
        assert any(a.startswith(name) for a in alarm_names), name
        assert f"/aws/lambda/{name}" in groups
        assert fn["inputs"]["tracingConfig"]["mode"] == "Active"


def test_visibility_timeouts_hold_for_every_consumer(plan, settings):
    queues = by_name(plan, QUEUE)
    fns = {f["inputs"]["name"]: f["inputs"] for f in compute(plan, FUNCTION)}
    for mapping in compute(plan, "aws:lambda/eventSourceMapping:EventSourceMapping"):
        queue_name = mapping["inputs"]["eventSourceArn"].rsplit(":", 1)[1]
        function_name = mapping["inputs"]["functionName"].split(":")[6]
        assert queues[queue_name]["inputs"]["visibilityTimeoutSeconds"] >= 6 * fns[function_name]["timeout"]


def test_every_physical_name_carries_project_env_and_deployment(plan, settings):
    for resource in plan.resources:
        inputs = resource["inputs"]
        for key in ("name", "bucket", "layerName", "dashboardName", "identifier"):
            value = inputs.get(key)
            if not isinstance(value, str) or resource["type"] in _NAME_IS_NOT_PHYSICAL:
                continue
            assert settings.prefix in value, (resource["type"], resource["name"], value)


# Types whose `name` input is not a globally visible physical name (scoped inside a parent).
_NAME_IS_NOT_PHYSICAL = {
    "aws:lambda/alias:Alias",               # "live", scoped to its function
    "aws:iam/rolePolicy:RolePolicy",        # inline, scoped to its role
    "aws:apigatewayv2/authorizer:Authorizer",
    "aws:apigatewayv2/stage:Stage",
    "aws:kms/alias:Alias",
}


@cache
def _taggable(type_token: str) -> bool:
    package, module_and_class = type_token.split(":", 1)
    if package != "aws":
        return False
    module, cls = module_and_class.split(":")
    module = module.split("/")[0]
    resource = getattr(importlib.import_module(f"pulumi_aws.{'lambda_' if module == 'lambda' else module}"), cls)
    return "tags" in inspect.signature(resource._internal_init).parameters


def test_every_taggable_resource_carries_the_four_tags(plan, settings):
    expected = settings.tags
    assert set(expected) == {"Project", "Environment", "DeploymentId", "ManagedBy"}
    for resource in plan.resources:
        if _taggable(resource["type"]):
            tags = resource["inputs"].get("tags") or {}
            assert {k: tags.get(k) for k in expected} == expected, (resource["type"], resource["name"])


def test_stack_references_use_the_names_from_params(plan, settings):
    # Every role's stack name is configured; the plan resolved each to the foundation's outputs.
    names = settings.params.foundation.stacks.model_dump()
    assert set(names) == set(EXPORTS)
    exported = {name for names_ in EXPORTS.values() for name in names_}
    assert exported == set(plan.foundation_outputs)


def test_every_function_reads_only_its_own_refs(plan, settings):
    from infra.environment import REF_NAMES, refs_for

    for key in specs.FUNCTION_KEYS:
        variables = by_name(plan, FUNCTION)[settings.function_name(key)]["inputs"]["environment"]["variables"]
        present = {name.lower() for name in variables if name.lower() in REF_NAMES}
        assert present == set(refs_for(key))

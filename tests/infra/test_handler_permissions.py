"""Each function's role grants exactly what its handler and its wiring use: nothing missing, nothing unused.

What a function uses comes from two places, neither hand-listed here:

* its handler's code: the boto3 calls on ``common.aws`` clients, found in the AST of the handler
  module and of every ``common`` module it imports (transitively), mapped to IAM actions through
  botocore's service model (``s3.get_object`` -> operation ``GetObject`` -> ``s3:GetObject``); plus
  the calls the code makes without boto3 (the secrets extension reads the secret with the role);
* its wiring in the plan: the log group it writes, active tracing, the queues its event source
  mappings poll, its async on-failure destination, its VPC attachment;

and the stack key, per calling service (``kms:ViaService``), for each of those that touches an
encrypted resource. The role's grants come from the plan's inline policy.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name
from parliament import UnknownActionException, expand_action

from infra import specs
from infra.components.iam import KMS_USE, LAMBDA_ENVIRONMENT_KMS_USE
from infra.config import REPO_ROOT
from tests.infra.conftest import FUNCTION, ROLE_POLICY, by_name, compute, policy_of

HANDLERS = REPO_ROOT / "handlers"

# API operations that are not IAM actions, and the action IAM checks for them (AWS's Service
# Authorization Reference): batches through the single-message action, and S3's reads.
OPERATION_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
}
# Names whose use calls AWS with the function's role without a boto3 call in the code.
IMPLIED_BY_NAME = {
    # The Parameters and Secrets Lambda Extension calls GetSecretValue with the function's credentials.
    ("common.secrets", "ExtensionSource"): {"secretsmanager:GetSecretValue"},
}
# What Lambda itself does with the role, by the function's configuration.
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SQS_POLLING = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
ENI = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
       "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}


# -- the handler's code --------------------------------------------------------------------------
def _module_path(module: str) -> Path:
    return HANDLERS.joinpath(*module.split(".")).with_suffix(".py")


def _imported_common_modules(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "common":
            if node.module == "common":
                found |= {f"common.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("common.")}
    return {m for m in found if _module_path(m).is_file()}


@cache
def module_closure(module: str) -> tuple[str, ...]:
    """``module`` and every ``common`` module it imports, transitively (imports inside functions too)."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += _imported_common_modules(ast.parse(_module_path(current).read_text()))
    return tuple(sorted(seen))


def _client_service(node: ast.AST) -> str | None:
    """``"s3"`` for ``aws.client("s3")`` or ``client("s3")``."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "client") or (isinstance(func, ast.Name) and func.id == "client"):
            return node.args[0].value
    return None


def client_calls(source: str) -> set[tuple[str, str]]:
    """(service, client method) of every call on a boto3 client in ``source``: on the client call
    itself (``aws.client("s3").get_object(...)``) or on a name bound to one."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and (service := _client_service(node.value)):
            bound.update({target.id: service for target in node.targets if isinstance(target, ast.Name)})
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            service = _client_service(receiver) or (bound.get(receiver.id) if isinstance(receiver, ast.Name) else None)
            if service is None:
                continue
            method = node.func.attr
            if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                method = node.args[0].value
            calls.add((service, method))
    return calls


@cache
def _operations(service: str) -> tuple[str, dict[str, str]]:
    model = botocore.session.get_session().get_service_model(service)
    return model.signing_name, {xform_name(op): op for op in model.operation_names}


def iam_action(service: str, method: str) -> str:
    """The IAM action a boto3 client method needs, from botocore's service model."""
    prefix, operations = _operations(service)
    if method not in operations:
        raise AssertionError(f"{service}.{method} is not an operation of botocore's {service} model "
                             "(a client helper?); teach tests/infra/test_handler_permissions.py what it calls")
    action = f"{prefix}:{operations[method]}"
    action = OPERATION_ACTIONS.get(action, action)
    _assert_iam_action(action)
    return action


def _assert_iam_action(action: str) -> None:
    try:
        expand_action(action)
    except UnknownActionException:
        raise AssertionError(f"{action} is not an IAM action; add the action IAM checks for it to OPERATION_ACTIONS") from None


def _names_used(source: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)} | {
        alias.asname or alias.name for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) for alias in node.names}


@cache
def handler_actions(key: str) -> frozenset[str]:
    """The IAM actions the handler of ``key`` (and the common code it imports) calls."""
    actions = set()
    handler_module = specs.spec(key).module
    handler_source = _module_path(handler_module).read_text()
    for module in module_closure(handler_module):
        source = _module_path(module).read_text()
        actions |= {iam_action(service, method) for service, method in client_calls(source)}
    for (module, name), implied in IMPLIED_BY_NAME.items():
        if module in module_closure(handler_module) and name in _names_used(handler_source):
            actions |= implied
    return frozenset(actions)


# -- the function's wiring in the plan -----------------------------------------------------------
def platform_actions(plan, settings, key: str) -> set[str]:
    """What Lambda does with the function's role, read from its configuration in the plan."""
    name = settings.function_name(key)
    inputs = by_name(plan, FUNCTION)[name]["inputs"]
    actions = set(LOGS)
    if inputs["tracingConfig"]["mode"] == "Active":
        actions |= XRAY
    for mapping in compute(plan, "aws:lambda/eventSourceMapping:EventSourceMapping"):
        if mapping["inputs"]["functionName"].split(":")[6] == name and ":sqs:" in mapping["inputs"]["eventSourceArn"]:
            actions |= SQS_POLLING
    for invoke_config in compute(plan, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"):
        if invoke_config["inputs"]["functionName"] == name:
            destination = invoke_config["inputs"]["destinationConfig"]["onFailure"]["destination"]
            assert ":sqs:" in destination, destination
            actions.add("sqs:SendMessage")
    if inputs.get("vpcConfig"):
        actions |= ENI
    return actions


def expected_key_uses(plan, settings, key: str) -> set[tuple[str, str]]:
    """(service, KMS action) pairs the function needs from the stack key."""
    inputs = by_name(plan, FUNCTION)[settings.function_name(key)]["inputs"]
    uses = set()
    if inputs.get("kmsKeyArn"):
        service, kms_actions = LAMBDA_ENVIRONMENT_KMS_USE
        uses |= {(service, action) for action in kms_actions}
    for action in handler_actions(key) | platform_actions(plan, settings, key):
        if action in KMS_USE:
            service, kms_actions = KMS_USE[action]
            uses |= {(service, kms_action) for kms_action in kms_actions}
    return uses


def granted(plan, settings, key: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The role's actions (KMS apart) and its KMS grants as (service of kms:ViaService, action).

    An attached managed policy cannot be read from the plan: it shows as one opaque grant."""
    policy = policy_of(by_name(plan, ROLE_POLICY)[f"{key}-least-privilege"])
    actions, key_uses = set(), set()
    for statement in policy["Statement"]:
        for action in statement["Action"]:
            if action.startswith("kms:"):
                via = statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService", "any service")
                key_uses.add((via.split(".")[0], action))
            else:
                actions.add(action)
    role_name = settings.name(f"{key}-role")
    actions |= {f"managed policy {a['inputs']['policyArn']}"
                for a in compute(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", may_be_empty=True)
                if a["inputs"]["role"] == role_name}
    return actions, key_uses


def _diff(needed: set, given: set) -> str:
    return f"missing: {sorted(needed - given)}; unused: {sorted(given - needed)}"


@pytest.mark.parametrize("key", specs.FUNCTION_KEYS)
def test_role_grants_exactly_what_the_handler_and_its_wiring_use(plan, settings, key):
    needed = set(handler_actions(key)) | platform_actions(plan, settings, key)
    actions, _ = granted(plan, settings, key)
    assert actions == needed, f"{settings.env} {key}: {_diff(needed, actions)} (infra/compute.py _statements)"


@pytest.mark.parametrize("key", specs.FUNCTION_KEYS)
def test_role_uses_the_key_exactly_through_the_services_it_calls(plan, settings, key):
    needed = expected_key_uses(plan, settings, key)
    _, key_uses = granted(plan, settings, key)
    assert key_uses == needed, f"{settings.env} {key}: {_diff(needed, key_uses)} (infra/components/iam.py KMS_USE)"


# -- the extraction itself -----------------------------------------------------------------------
def test_handlers_calls_are_found():
    # A guard on the AST walk: these calls are in the handlers today.
    assert {"s3:GetObject", "s3:PutObject", "events:PutEvents"} <= handler_actions("file-processor")
    assert {"sqs:SendMessage", "sns:Publish", "secretsmanager:GetSecretValue"} <= handler_actions("scheduler")
    assert handler_actions("auth-handler") == {"secretsmanager:GetSecretValue"}   # through the extension
    for key in specs.FUNCTION_KEYS:
        assert handler_actions(key), key


# Powertools utilities that call AWS with the function's role; none is used today.
POWERTOOLS_AWS_UTILITIES = ("parameters", "idempotency", "feature_flags", "streaming", "data_masking")


@pytest.mark.parametrize("key", specs.FUNCTION_KEYS)
def test_no_aws_call_escapes_the_client_walk(key):
    """Calls the walk would not see: boto3 resources, and Powertools utilities that reach AWS."""
    for module in module_closure(specs.spec(key).module):
        tree = ast.parse(_module_path(module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "resource":
                assert not (isinstance(node.func.value, ast.Name) and node.func.value.id == "boto3"), (
                    f"{module}: boto3.resource(); use common.aws.client so the permissions test sees the calls")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aws_lambda_powertools.utilities."):
                utility = node.module.split(".")[2]
                assert utility not in POWERTOOLS_AWS_UTILITIES, (
                    f"{module} uses Powertools {utility}, which calls AWS: add its actions to IMPLIED_BY_NAME")


def test_client_calls_follow_names_bound_to_clients_and_paginators():
    source = (
        "from common import aws\n"
        "queue = aws.client('sqs')\n"
        "def f():\n"
        "    queue.delete_message_batch(QueueUrl='u', Entries=[])\n"
        "    aws.client('s3').get_paginator('list_objects_v2').paginate(Bucket='b')\n"
        "    other.delete_message_batch()\n"
    )
    calls = client_calls(source)
    assert calls == {("sqs", "delete_message_batch"), ("s3", "list_objects_v2")}
    assert {iam_action(*call) for call in calls} == {"sqs:DeleteMessage", "s3:ListBucket"}


def test_operation_names_map_to_iam_actions_through_botocore():
    assert iam_action("s3", "get_object") == "s3:GetObject"
    assert iam_action("secretsmanager", "get_secret_value") == "secretsmanager:GetSecretValue"
    assert iam_action("sqs", "send_message_batch") == "sqs:SendMessage"
    with pytest.raises(AssertionError, match="not an operation"):
        iam_action("s3", "upload_file")


def test_mapped_operations_are_not_iam_actions_but_their_targets_are():
    for operation, action in OPERATION_ACTIONS.items():
        with pytest.raises(UnknownActionException):
            expand_action(operation)
        _assert_iam_action(action)


def test_kms_use_table_names_real_actions():
    for action, (service, kms_actions) in KMS_USE.items():
        _assert_iam_action(action)
        assert action.split(":")[0] == service
        for kms_action in kms_actions:
            _assert_iam_action(kms_action)
    assert LAMBDA_ENVIRONMENT_KMS_USE == ("lambda", ("kms:Decrypt",))

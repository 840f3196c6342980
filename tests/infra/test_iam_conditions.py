"""Conditions parliament does not check: kms:ViaService, confused-deputy keys, the key policy's
publishers, TLS-only buckets and the authorizer cache, for every environment."""
from __future__ import annotations

import json
import re

import pytest

from infra import config
from infra.mocks import ACCOUNT_ID
from tests.infra.conftest import ROLE_POLICY, by_name, compute, plan_for, policy_of

VIA_SERVICE = re.compile(r"^(?P<service>[a-z0-9-]+)\.(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d)\.amazonaws\.com$")


def identity_statements(plan):
    for policy in plan.of_type(ROLE_POLICY):
        for statement in policy_of(policy)["Statement"]:
            yield policy["inputs"]["name"], statement


def test_every_kms_grant_of_a_role_names_one_service_of_this_region(plan, settings):
    kms_statements = [(name, s) for name, s in identity_statements(plan)
                      if any(a.startswith("kms:") for a in s["Action"])]
    assert kms_statements
    for name, statement in kms_statements:
        assert all(a.startswith("kms:") for a in statement["Action"]), (name, statement)
        assert statement["Resource"] == [plan.foundation_outputs["kmsKeyArn"]], (name, statement)
        via = statement["Condition"]["StringEquals"]["kms:ViaService"]
        match = VIA_SERVICE.match(via)
        assert match and match["region"] == settings.params.aws_region, (name, via)
        assert statement["Sid"].lower() == f"stackkeyvia{match['service']}", (name, statement["Sid"])


def test_no_role_can_use_the_key_directly(plan):
    # Without kms:ViaService a role could call kms:Decrypt on any ciphertext of the shared key.
    for name, statement in identity_statements(plan):
        if any(a.startswith("kms:") for a in statement["Action"]):
            assert set(statement.get("Condition", {})) == {"StringEquals"}, (name, statement)


def test_service_invoke_permissions_are_bound_to_their_source(plan):
    permissions = compute(plan, "aws:lambda/permission:Permission")
    assert permissions
    for permission in permissions:
        inputs = permission["inputs"]
        assert inputs["principal"].endswith(".amazonaws.com"), permission["name"]
        assert inputs.get("sourceArn"), permission["name"]
        if inputs["sourceArn"].split(":")[4] == "":
            # An S3 bucket ARN names no account: the account must be pinned apart.
            assert inputs.get("sourceAccount") == ACCOUNT_ID, permission["name"]


def test_s3_invoke_permission_names_the_bucket_and_the_account(plan):
    (permission,) = [p["inputs"] for p in compute(plan, "aws:lambda/permission:Permission")
                     if p["inputs"]["principal"] == "s3.amazonaws.com"]
    assert permission["sourceArn"] == plan.foundation_outputs["uploadsBucketArn"]
    assert permission["sourceAccount"] == ACCOUNT_ID


def test_service_roles_trust_only_their_own_source(plan, settings):
    roles = {r["inputs"]["name"]: json.loads(r["inputs"]["assumeRolePolicy"]) for r in compute(plan, "aws:iam/role:Role")}
    (statement,) = roles[settings.name("pipeline-role")]["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnEquals": {"aws:SourceArn": f"arn:aws:states:{settings.params.aws_region}:{ACCOUNT_ID}:stateMachine:"
                                       f"{settings.name('data-pipeline')}"},
    }
    machine = by_name(plan, "aws:sfn/stateMachine:StateMachine")[settings.name("data-pipeline")]
    assert machine["inputs"]["roleArn"].endswith(f":role/{settings.name('pipeline-role')}")


def test_pipeline_role_invokes_only_the_steps_the_definition_calls(plan, settings):
    machine = by_name(plan, "aws:sfn/stateMachine:StateMachine")[settings.name("data-pipeline")]
    definition = json.loads(machine["inputs"]["definition"])
    invoked = {s["Parameters"]["FunctionName"] for s in definition["States"].values()
               if s.get("Resource") == "arn:aws:states:::lambda:invoke"}
    published = {s["Parameters"]["TopicArn"] for s in definition["States"].values()
                 if s.get("Resource") == "arn:aws:states:::sns:publish"}
    policy = policy_of(by_name(plan, ROLE_POLICY)["data-pipeline-least-privilege"])
    grants = {}
    for statement in policy["Statement"]:
        for action in statement["Action"]:
            grants.setdefault(action, set()).update(statement["Resource"])
    assert grants["lambda:InvokeFunction"] == invoked
    assert grants["sns:Publish"] == published
    assert not any(settings.function_name("notification-handler") in arn for arn in grants["lambda:InvokeFunction"])
    data_actions = {a for a in grants if not a.startswith(("logs:", "xray:", "kms:"))}
    assert data_actions == {"lambda:InvokeFunction", "sns:Publish"}


# -- the KMS key policy (standalone foundations: dev and local) -------------------------------
STANDALONE = ("dev", "local")


def key_statements(plan):
    (key,) = plan.of_type("aws:kms/key:Key", stack="foundation")
    return {s["Sid"]: s for s in json.loads(key["inputs"]["policy"])["Statement"]}


def encrypted_publishers(plan) -> set[tuple[str, str]]:
    """(publishing service, "sns" or "sqs") for each AWS service that delivers into a KMS-encrypted
    topic or queue of the compute stack as itself, read from the plan's wiring."""
    kms = plan.foundation_outputs["kmsKeyArn"]
    encrypted = {}
    for type_token, kind in (("aws:sns/topic:Topic", "sns"), ("aws:sqs/queue:Queue", "sqs")):
        for resource in compute(plan, type_token):
            if resource["inputs"].get("kmsMasterKeyId") == kms:
                name = resource["inputs"]["name"]
                arn = f"arn:aws:{kind}:{plan_region(plan)}:{ACCOUNT_ID}:{name}"
                encrypted[arn] = kind
    found = set()
    for alarm in compute(plan, "aws:cloudwatch/metricAlarm:MetricAlarm"):
        for action in alarm["inputs"].get("alarmActions", []) + alarm["inputs"].get("okActions", []):
            if action in encrypted:
                found.add(("cloudwatch", encrypted[action]))
    for target in compute(plan, "aws:cloudwatch/eventTarget:EventTarget"):
        for arn in (target["inputs"]["arn"], (target["inputs"].get("deadLetterConfig") or {}).get("arn")):
            if arn in encrypted:
                found.add(("events", encrypted[arn]))
    for subscription in compute(plan, "aws:sns/topicSubscription:TopicSubscription"):
        if subscription["inputs"]["endpoint"] in encrypted:
            found.add(("sns", encrypted[subscription["inputs"]["endpoint"]]))
    for notification in compute(plan, "aws:s3/bucketNotification:BucketNotification"):
        for field, arn_field in (("queues", "queueArn"), ("topics", "topicArn")):
            for entry in notification["inputs"].get(field) or []:
                if entry[arn_field] in encrypted:
                    found.add(("s3", encrypted[entry[arn_field]]))
    return found


def plan_region(plan) -> str:
    return plan.foundation_outputs["kmsKeyArn"].split(":")[3]


@pytest.mark.parametrize("env", STANDALONE)
def test_key_policy_lets_exactly_the_stacks_publishers_use_the_key(env):
    plan = plan_for(env)
    publishers = encrypted_publishers(plan)
    # The alarms topic is encrypted: without CloudWatch on the key, every alarm would be dropped.
    assert ("cloudwatch", "sns") in publishers
    granted = set()
    for sid, statement in key_statements(plan).items():
        principal = statement["Principal"]
        if "AWS" in principal:
            assert (sid, principal) == ("AccountAdministers", {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"})
            continue
        service = principal["Service"].removesuffix(".amazonaws.com")
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"], sid
        context = statement["Condition"]["StringLike"]
        (context_key,) = context
        kind = {"kms:EncryptionContext:aws:sns:topicArn": "sns", "kms:EncryptionContext:aws:sqs:arn": "sqs"}[context_key]
        granted.add((service, kind))
    assert granted == publishers


@pytest.mark.parametrize("env", STANDALONE)
def test_key_policy_pins_each_publisher_to_this_deployment(env):
    plan, settings = plan_for(env), config.load(env)
    region = settings.params.aws_region
    for sid, statement in key_statements(plan).items():
        if sid == "AccountAdministers":
            continue
        condition = statement["Condition"]
        for value in condition["StringLike"].values():
            assert value.endswith(f":{region}:{ACCOUNT_ID}:{settings.prefix}-*"), (sid, value)
        service = statement["Principal"]["Service"]
        if service == "events.amazonaws.com":
            # EventBridge's deliveries carry no aws:Source* keys to KMS; the encryption context and
            # the topic and queue policies (this stack's rules only) bound it instead.
            assert set(condition) == {"StringLike"}, sid
            continue
        assert condition["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}, sid
        source = condition["ArnLike"]["aws:SourceArn"]
        assert source.startswith(f"arn:aws:{service.split('.')[0]}:{region}:{ACCOUNT_ID}:"), (sid, source)
        assert source.endswith(f"{settings.prefix}-*"), (sid, source)


@pytest.mark.parametrize("env", STANDALONE)
def test_buckets_refuse_every_action_over_plain_http(env):
    plan = plan_for(env)
    policies = plan.of_type("aws:s3/bucketPolicy:BucketPolicy", stack="foundation")
    assert len(policies) == 3
    for policy in policies:
        (statement,) = policy_of(policy)["Statement"]
        assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
        assert statement["Action"] == "s3:*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        bucket, objects = statement["Resource"]
        assert objects == bucket + "/*"


# -- the authorizer cache ------------------------------------------------------------------------
def test_authorizer_cache_ttl_comes_from_params(plan, settings):
    (authorizer,) = compute(plan, "aws:apigatewayv2/authorizer:Authorizer")
    assert authorizer["inputs"]["authorizerResultTtlInSeconds"] == settings.params.http_api.authorizer_cache_ttl_s


def test_prod_caches_authorizer_results_briefly_and_dev_not_at_all():
    ttl = {env: config.load(env).params.http_api.authorizer_cache_ttl_s for env in config.ENVIRONMENTS}
    assert 0 < ttl["prod"] <= 60 and ttl["staging"] == ttl["prod"]
    assert ttl["dev"] == 0


@pytest.mark.parametrize("value", [-1, 3601])
def test_authorizer_cache_ttl_outside_0_to_3600_is_refused(value):
    raw = _raw("prod")
    raw["http_api"] = {"authorizer_cache_ttl_s": value}
    with pytest.raises(config.ParamsError, match=r"http_api\.authorizer_cache_ttl_s.*allowed range is 0\.\.3600"):
        config.from_mapping(raw, source="params/prod.yaml")


def _raw(env: str) -> dict:
    import yaml

    return yaml.safe_load(config.params_path(env).read_text())

"""parliament (AWS IAM policy linter) over every policy document of every environment's plan.

Documents: role trust policies, inline role policies, managed policy documents, queue, topic and
bucket policies, KMS key policies, and the resource-policy statement each ``aws.lambda.Permission``
adds to its function. Each statement is linted on its own (so a finding names its Sid) and each
document as a whole (for findings across statements, such as duplicate Sids).

A finding fails the test unless ``ALLOWED`` lists it with its reason. Keep that list short: fix the
policy first.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from parliament import analyze_policy_string

from infra.mocks import ACCOUNT_ID
from tests.infra.conftest import ENVS, plan_for

# Resource types whose input holds a policy document, and what kind of document it is.
DOCUMENT_INPUTS: dict[str, tuple[str, str]] = {
    "aws:iam/role:Role": ("trust", "assumeRolePolicy"),
    "aws:iam/rolePolicy:RolePolicy": ("identity", "policy"),
    "aws:iam/policy:Policy": ("managed", "policy"),
    "aws:sqs/queuePolicy:QueuePolicy": ("queue", "policy"),
    "aws:sns/topicPolicy:TopicPolicy": ("topic", "policy"),
    "aws:s3/bucketPolicy:BucketPolicy": ("bucket", "policy"),
    "aws:kms/key:Key": ("kms-key", "policy"),
}
PERMISSION = "aws:lambda/permission:Permission"

# (document kind, statement Sid or "*" for any, parliament issue): why it is accepted.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("trust", "*", "MALFORMED"):
        "A trust policy has no Resource element: the role it is attached to is the resource. "
        "parliament reads it as an identity policy and stops there; each trust policy is therefore "
        "linted a second time with the role's ARN as its Resource (kind 'trust+resource'), which "
        "must come back clean.",
    ("trust+resource", "*", "CREDENTIALS_EXPOSURE"):
        "sts:AssumeRole, which returns credentials, is what a trust policy grants (to its one service "
        "principal, under its conditions); read as an identity policy, the community auditor flags it.",
    ("kms-key", "*", "RESOURCE_STAR"):
        "In a key policy, Resource \"*\" means this key and nothing else; AWS accepts no other value.",
    ("kms-key", "AccountAdministers", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "AWS's default key statement: the account (through IAM) administers the key. Without it the "
        "roles' identity policies, which grant the key's use per service, would not apply, and the key "
        "could become unmanageable.",
    ("identity", "LogDelivery", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "logs:PutResourcePolicy is one of the CloudWatch Logs log-delivery actions that Step Functions "
        "logging needs; AWS authorises them only on \"*\" (infra/components/iam.py STAR_RESOURCE_ACTIONS).",
}


@dataclass(frozen=True)
class PolicyDocument:
    """One policy document of a plan, with where it comes from."""

    env: str
    kind: str
    resource: str        # "<type> <name>"
    document: dict[str, Any]


def _load(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def _sid(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", name.title())


def permission_statement(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    """The statement Lambda adds to the function's resource policy for an ``aws.lambda.Permission``."""
    function = inputs["function"]
    if not function.startswith("arn:"):
        function = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function}"
    if inputs.get("qualifier"):
        function = f"{function}:{inputs['qualifier']}"
    principal = inputs["principal"]
    statement: dict[str, Any] = {
        "Sid": _sid(name), "Effect": "Allow",
        "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
        "Action": inputs["action"], "Resource": function,
    }
    condition: dict[str, dict[str, str]] = {}
    if inputs.get("sourceArn"):
        condition.setdefault("ArnLike", {})["aws:SourceArn"] = inputs["sourceArn"]
    for field, key in (("sourceAccount", "aws:SourceAccount"), ("principalOrgId", "aws:PrincipalOrgID"),
                       ("eventSourceToken", "lambda:EventSourceToken"),
                       ("functionUrlAuthType", "lambda:FunctionUrlAuthType")):
        if inputs.get(field):
            condition.setdefault("StringEquals", {})[key] = inputs[field]
    if condition:
        statement["Condition"] = condition
    return statement


def documents(env: str) -> Iterator[PolicyDocument]:
    """Every policy document of ``env``'s plan (both stacks)."""
    for resource in plan_for(env).resources:
        kind_and_input = DOCUMENT_INPUTS.get(resource["type"])
        where = f"{resource['type']} {resource['name']}"
        if kind_and_input is not None:
            kind, field = kind_and_input
            document = _load(resource["inputs"][field])
            yield PolicyDocument(env, kind, where, document)
            if kind == "trust":
                role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{resource['inputs']['name']}"
                with_resource = {**document, "Statement": [{**s, "Resource": role_arn} for s in document["Statement"]]}
                yield PolicyDocument(env, "trust+resource", where, with_resource)
        elif resource["type"] == PERMISSION:
            statement = permission_statement(resource["inputs"], resource["name"])
            yield PolicyDocument(env, "lambda-permission", where, {"Version": "2012-10-17", "Statement": [statement]})


def _analyze(document: dict[str, Any]) -> list[Any]:
    return analyze_policy_string(json.dumps(document), include_community_auditors=True).findings


def findings(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(Sid, issue, detail) of every parliament finding, statement by statement, then the document's own."""
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    found: list[tuple[str, str, str]] = []
    for index, statement in enumerate(statements):
        sid = statement.get("Sid") or f"#{index}"
        for finding in _analyze({"Version": document.get("Version", "2012-10-17"), "Statement": [statement]}):
            found.append((sid, finding.issue, str(finding.detail)))
    per_statement = {issue for _, issue, _ in found}
    for finding in _analyze(document):
        if finding.issue not in per_statement:
            found.append(("*", finding.issue, str(finding.detail)))
    return found


def _allowed(kind: str, sid: str, issue: str) -> tuple[str, str, str] | None:
    for key in ((kind, sid, issue), (kind, "*", issue)):
        if key in ALLOWED:
            return key
    return None


@cache
def plan_findings(env: str) -> tuple[tuple[PolicyDocument, str, str, str], ...]:
    """Every finding of ``env``'s plan: (document, Sid, issue, detail)."""
    return tuple((doc, sid, issue, detail) for doc in documents(env) for sid, issue, detail in findings(doc.document))


@pytest.mark.parametrize("env", ENVS)
def test_parliament_finds_nothing_outside_the_allow_list(env):
    unexpected = [
        f"plan {env}: {doc.resource} ({doc.kind}) statement {sid}: {issue} {detail[:300]}"
        for doc, sid, issue, detail in plan_findings(env) if _allowed(doc.kind, sid, issue) is None
    ]
    assert not unexpected, (
        "parliament findings; fix the policy in infra/, or add a reasoned entry to ALLOWED in "
        "tests/infra/test_parliament.py:\n" + "\n".join(unexpected))


def test_every_allow_list_entry_is_still_needed():
    used = {_allowed(doc.kind, sid, issue) for env in ENVS for doc, sid, issue, _ in plan_findings(env)}
    used.discard(None)
    assert set(ALLOWED) == used, f"stale ALLOWED entries, remove them: {sorted(set(ALLOWED) - used)}"


@pytest.mark.parametrize("env", ENVS)
def test_every_policy_document_in_the_plan_is_linted(env):
    """A resource type that carries a policy document the lint does not know would go unchecked."""
    known = set(DOCUMENT_INPUTS) | {PERMISSION}
    for resource in plan_for(env).resources:
        for field, value in resource["inputs"].items():
            try:
                parsed = json.loads(value) if isinstance(value, str) else None
            except ValueError:
                continue
            if isinstance(parsed, dict) and "Statement" in parsed:
                assert resource["type"] in known, (
                    f"plan {env}: {resource['type']} {resource['name']} input {field!r} is a policy document; "
                    "add its type to DOCUMENT_INPUTS in tests/infra/test_parliament.py")
    kinds = {doc.kind for doc in documents(env)}
    assert {"trust", "identity", "queue", "topic", "lambda-permission"} <= kinds
    if plan_for(env).of_type("aws:kms/key:Key"):
        assert {"kms-key", "bucket"} <= kinds


def test_the_permission_statement_carries_every_condition_of_the_permission():
    statement = permission_statement({
        "action": "lambda:InvokeFunction", "principal": "s3.amazonaws.com",
        "function": "arn:aws:lambda:us-east-1:123456789012:function:f", "qualifier": "live",
        "sourceArn": "arn:aws:s3:::bucket", "sourceAccount": "123456789012"}, "uploads-invoke")
    assert statement == {
        "Sid": "UploadsInvoke", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f:live",
        "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket"},
                      "StringEquals": {"aws:SourceAccount": "123456789012"}},
    }


def test_parliament_does_report_what_the_allow_list_would_hide():
    """The lint is live: a wildcard grant and an unknown action are reported."""
    bad = {"Version": "2012-10-17", "Statement": [
        {"Sid": "TooBroad", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Sid": "Typo", "Effect": "Allow", "Action": "sqs:RecieveMessage", "Resource": "*"},
    ]}
    issues = {(sid, issue) for sid, issue, _ in findings(bad)}
    assert ("TooBroad", "RESOURCE_STAR") in issues and ("Typo", "UNKNOWN_ACTION") in issues

"""Small helpers for least-privilege IAM policy documents."""
from __future__ import annotations

from typing import Any, Sequence

import pulumi

# Actions AWS only authorises on Resource "*": X-Ray writes, and CloudWatch Logs' log-delivery
# APIs that Step Functions logging needs. The policy tests allow "*" for exactly these.
STAR_RESOURCE_ACTIONS = frozenset({
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
})


def statement(sid: str, actions: Sequence[str], resources: Sequence[Any], **extra: Any) -> dict[str, Any]:
    """One Allow statement; ``resources`` may hold Outputs."""
    for action in actions:
        if "*" in action:
            raise ValueError(f"statement {sid}: wildcard action {action!r} is not allowed; list the actions")
    body: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}
    body.update(extra)
    return body


def document(statements: Sequence[dict[str, Any]]) -> pulumi.Output[str]:
    """A policy document as a JSON string Output."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role(service: str) -> str:
    import json

    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })

"""Small helpers for least-privilege IAM policy documents."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

# Actions AWS only authorises on Resource "*": X-Ray writes, CloudWatch Logs' log-delivery APIs
# that Step Functions logging needs, and the two EC2 Describe calls Lambda makes to attach a
# function to its VPC. The policy tests allow "*" for exactly these.
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
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
})

# What a data-plane action needs from the stack's KMS key when its resource is encrypted with it
# (every queue, topic, bucket and secret of the stack is): the service that calls KMS on the
# caller's behalf (the kms:ViaService condition) and the KMS operations it calls.
#   SQS: consumers decrypt; producers generate a data key and decrypt it (SQS reuses data keys).
#   SNS: publishers generate a data key and decrypt it.
#   S3 (SSE-KMS, single-part PutObject): readers decrypt; writers generate a data key.
#   Secrets Manager: readers decrypt.
KMS_USE: dict[str, tuple[str, tuple[str, ...]]] = {
    "sqs:ReceiveMessage": ("sqs", ("kms:Decrypt",)),
    "sqs:SendMessage": ("sqs", ("kms:GenerateDataKey", "kms:Decrypt")),
    "sns:Publish": ("sns", ("kms:GenerateDataKey", "kms:Decrypt")),
    "s3:GetObject": ("s3", ("kms:Decrypt",)),
    "s3:PutObject": ("s3", ("kms:GenerateDataKey",)),
    "secretsmanager:GetSecretValue": ("secretsmanager", ("kms:Decrypt",)),
}
# Lambda decrypts a function's environment variables with the execution role.
LAMBDA_ENVIRONMENT_KMS_USE = ("lambda", ("kms:Decrypt",))
_SERVICE_TITLES = {"sqs": "Sqs", "sns": "Sns", "s3": "S3", "secretsmanager": "SecretsManager", "lambda": "Lambda"}


def statement(sid: str, actions: Sequence[str], resources: Sequence[Any] | pulumi.Output, **extra: Any) -> dict[str, Any]:
    """One Allow statement; ``resources`` may hold Outputs, or be one Output of a list."""
    for action in actions:
        if "*" in action:
            raise ValueError(f"statement {sid}: wildcard action {action!r} is not allowed; list the actions")
    body: dict[str, Any] = {
        "Sid": sid, "Effect": "Allow", "Action": list(actions),
        "Resource": resources if isinstance(resources, pulumi.Output) else list(resources),
    }
    body.update(extra)
    return body


def document(statements: Sequence[dict[str, Any]]) -> pulumi.Output[str]:
    """A policy document as a JSON string Output."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def via_service(service: str, region: str) -> str:
    """The kms:ViaService value of ``service`` in ``region`` (``sqs.us-east-1.amazonaws.com``)."""
    return f"{service}.{region}.amazonaws.com"


def key_statements(statements: Sequence[dict[str, Any]], kms_key_arn: pulumi.Input[str], region: str,
                   extra: Sequence[tuple[str, Sequence[str]]] = ()) -> list[dict[str, Any]]:
    """The stack key's statements that ``statements`` need, one per calling service, each pinned
    by ``kms:ViaService`` so the key serves that service's calls only (never a direct KMS call).

    ``extra`` adds (service, KMS actions) uses that no data action implies, such as Lambda
    decrypting the environment.
    """
    needs: dict[str, set[str]] = {}
    for service, kms_actions in extra:
        needs.setdefault(service, set()).update(kms_actions)
    for body in statements:
        for action in body["Action"]:
            if action in KMS_USE:
                service, kms_actions = KMS_USE[action]
                needs.setdefault(service, set()).update(kms_actions)
    return [
        statement(f"StackKeyVia{_SERVICE_TITLES.get(service, service.title())}", sorted(needs[service]),
                  [kms_key_arn], Condition={"StringEquals": {"kms:ViaService": via_service(service, region)}})
        for service in sorted(needs)
    ]


def vpc_access_statements(region: str, account_id: pulumi.Input[str], vpc_id: pulumi.Input[str],
                          subnet_ids: pulumi.Input[Sequence[str]],
                          security_group_ids: pulumi.Input[Sequence[str]]) -> list[dict[str, Any]]:
    """What Lambda needs to manage a function's network interfaces, in place of the managed
    AWSLambdaVPCAccessExecutionRole (whose logs:* on "*" would undo the per-function log scoping).

    * CreateNetworkInterface authorises the new interface, its subnet and its security groups:
      naming the subnets and groups confines new interfaces to them.
    * Delete/Assign/Unassign act on existing interfaces, conditioned on the stack's VPC.
    * The two Describe calls only work on "*".
    """
    ec2 = f"arn:aws:ec2:{region}"
    create_resources = pulumi.Output.all(account_id, subnet_ids, security_group_ids).apply(
        lambda args: [f"{ec2}:{args[0]}:network-interface/*"]
        + [f"{ec2}:{args[0]}:subnet/{subnet}" for subnet in args[1]]
        + [f"{ec2}:{args[0]}:security-group/{group}" for group in args[2]])
    interfaces = pulumi.Output.concat(ec2, ":", account_id, ":network-interface/*")
    vpc_arn = pulumi.Output.concat(ec2, ":", account_id, ":vpc/", vpc_id)
    return [
        statement("CreateEnisInOwnSubnets", ["ec2:CreateNetworkInterface"], create_resources),
        statement("ManageEnisInOwnVpc", ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                                         "ec2:UnassignPrivateIpAddresses"], [interfaces],
                  Condition={"ArnEquals": {"ec2:Vpc": vpc_arn}}),
        statement("DescribeEnis", ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], ["*"]),
    ]


def assume_role(service: str, condition: dict[str, Any] | None = None) -> pulumi.Output[str]:
    """A trust policy letting ``service`` assume the role, under ``condition`` when given."""
    body: dict[str, Any] = {"Sid": "AssumedBy" + service.split(".")[0].title(), "Effect": "Allow",
                            "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        body["Condition"] = condition
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [body]})

"""The foundation the compute stack stands on, read through StackReference.

Stack names come from ``params/<env>.yaml`` (``foundation.stacks``). Several roles may name the
same stack (a standalone deploy of ``infra/foundation.py`` provides all of them); each distinct
stack is referenced once.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config import Settings

# Output names each foundation stack must export, by role. infra/foundation.py exports them all.
EXPORTS: dict[str, tuple[str, ...]] = {
    "network": ("vpcId", "privateSubnetIds", "lambdaSecurityGroupId"),
    "security": ("kmsKeyArn",),
    "storage": ("uploadsBucketName", "uploadsBucketArn", "processedBucketName", "processedBucketArn",
                "artifactsBucketName", "artifactsBucketArn"),
    "database": ("dbEndpoint", "dbSecretArn"),
    "secrets": ("jwtSecretArn", "apiKeysSecretArn"),
}


@dataclass
class Foundation:
    """Outputs of the foundation stacks that the compute stack consumes."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list]
    lambda_security_group_id: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    uploads_bucket_name: pulumi.Output[str]
    uploads_bucket_arn: pulumi.Output[str]
    processed_bucket_name: pulumi.Output[str]
    processed_bucket_arn: pulumi.Output[str]
    artifacts_bucket_name: pulumi.Output[str]
    artifacts_bucket_arn: pulumi.Output[str]
    db_endpoint: pulumi.Output[str]
    db_secret_arn: pulumi.Output[str]
    jwt_secret_arn: pulumi.Output[str]
    api_keys_secret_arn: pulumi.Output[str]


def read(settings: Settings) -> Foundation:
    """Reference each distinct foundation stack once and pick the outputs by role."""
    stacks = settings.params.foundation.stacks.model_dump()
    references: dict[str, pulumi.StackReference] = {}
    for role, stack_name in stacks.items():
        if stack_name not in references:
            references[stack_name] = pulumi.StackReference(f"foundation-{role}", stack_name=stack_name)

    def get(role: str, output: str) -> pulumi.Output:
        return references[stacks[role]].require_output(output)

    return Foundation(
        vpc_id=get("network", "vpcId"),
        private_subnet_ids=get("network", "privateSubnetIds"),
        lambda_security_group_id=get("network", "lambdaSecurityGroupId"),
        kms_key_arn=get("security", "kmsKeyArn"),
        uploads_bucket_name=get("storage", "uploadsBucketName"),
        uploads_bucket_arn=get("storage", "uploadsBucketArn"),
        processed_bucket_name=get("storage", "processedBucketName"),
        processed_bucket_arn=get("storage", "processedBucketArn"),
        artifacts_bucket_name=get("storage", "artifactsBucketName"),
        artifacts_bucket_arn=get("storage", "artifactsBucketArn"),
        db_endpoint=get("database", "dbEndpoint"),
        db_secret_arn=get("database", "dbSecretArn"),
        jwt_secret_arn=get("secrets", "jwtSecretArn"),
        api_keys_secret_arn=get("secrets", "apiKeysSecretArn"),
    )

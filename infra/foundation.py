"""The foundation program: network, security, storage, database and secrets for a standalone deploy.

It exports exactly what ``infra/foundation_refs.py`` reads (``EXPORTS``), so the compute stack
can reference this one stack for all five roles. Organisations with their own platform stacks
point ``foundation.stacks`` in params at those instead and never deploy this.
"""
from __future__ import annotations

import ipaddress
import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components import iam
from infra.config import Settings

INTERFACE_ENDPOINTS = ("sqs", "sns", "secretsmanager")
POSTGRES_PORT = 5432

# AWS services that publish into the compute stack's KMS-encrypted topics and queues as
# themselves (a service principal, not a role), so the key policy must let them use the key:
# (Sid, publisher, the encrypting service, the publisher's source ARN pattern or None).
#   CloudWatch alarms -> the alarms topic.           EventBridge rules -> the notifications topic.
#   EventBridge rules -> the events DLQ (dead-letters). The notifications topic -> its queue.
# The encryption context (which topic or queue the data key is for) confines each to this
# deployment's resources. aws:SourceAccount/aws:SourceArn add the publisher where the KMS request
# carries them (CloudWatch alarms, SNS). AWS's SNS key-management guide lists them as unsupported
# for EventBridge's deliveries to encrypted targets, where such a condition would silently drop
# every event: EventBridge's statements rest on the encryption context, and the topic and queue
# policies already admit only this stack's rules.
# S3 notifications invoke the file processor directly (no topic or queue), and Lambda, Step
# Functions, SQS consumers and the handlers use the key through their roles (kms:ViaService in
# their identity policies), so none of them needs a service grant here.
KEY_PUBLISHERS: tuple[tuple[str, str, str, str | None], ...] = (
    ("CloudWatchAlarmsToTopics", "cloudwatch", "sns", "arn:aws:cloudwatch:{region}:{account}:alarm:{prefix}-*"),
    ("EventBridgeRulesToTopics", "events", "sns", None),
    ("EventBridgeRulesToQueues", "events", "sqs", None),
    ("SnsTopicsToQueues", "sns", "sqs", "arn:aws:sns:{region}:{account}:{prefix}-*"),
)
# The encryption context SNS and SQS pass to KMS: the topic's or the queue's ARN.
ENCRYPTION_CONTEXT = {
    "sns": ("kms:EncryptionContext:aws:sns:topicArn", "arn:aws:sns:{region}:{account}:{prefix}-*"),
    "sqs": ("kms:EncryptionContext:aws:sqs:arn", "arn:aws:sqs:{region}:{account}:{prefix}-*"),
}


def build(settings: Settings) -> dict[str, pulumi.Output[Any]]:
    """Declare the foundation for one environment; return its outputs."""
    p, f = settings.params, settings.params.foundation
    tags = settings.tags
    region = p.aws_region

    # -- network -------------------------------------------------------------------------------
    zones = aws.get_availability_zones(state="available").names[: f.availability_zones]
    network = ipaddress.ip_network(f.vpc_cidr)
    subnet_cidrs = list(network.subnets(new_prefix=min(network.prefixlen + 4, 28)))
    vpc = aws.ec2.Vpc("vpc", cidr_block=f.vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
                      tags={**tags, "Name": settings.name("vpc")})
    route_table = aws.ec2.RouteTable("private", vpc_id=vpc.id, tags={**tags, "Name": settings.name("private")})
    subnets = []
    for index, zone in enumerate(zones):
        subnet = aws.ec2.Subnet(
            f"private-{index}", vpc_id=vpc.id, cidr_block=str(subnet_cidrs[index]), availability_zone=zone,
            map_public_ip_on_launch=False, tags={**tags, "Name": settings.name(f"private-{zone}"), "Tier": "private"})
        aws.ec2.RouteTableAssociation(f"private-{index}", subnet_id=subnet.id, route_table_id=route_table.id)
        subnets.append(subnet)
    subnet_ids = [s.id for s in subnets]

    lambda_sg = aws.ec2.SecurityGroup(
        "lambda-sg", name=settings.name("lambda"), vpc_id=vpc.id,
        description="Lambda functions in the VPC: egress to endpoints and the database only", tags=tags)
    endpoints_sg = aws.ec2.SecurityGroup(
        "endpoints-sg", name=settings.name("endpoints"), vpc_id=vpc.id,
        description="Interface endpoints: HTTPS from the Lambda security group", tags=tags)
    db_sg = aws.ec2.SecurityGroup(
        "db-sg", name=settings.name("db"), vpc_id=vpc.id,
        description="PostgreSQL: from the Lambda security group only", tags=tags)
    aws.vpc.SecurityGroupIngressRule("endpoints-from-lambda", security_group_id=endpoints_sg.id,
                                     referenced_security_group_id=lambda_sg.id, ip_protocol="tcp",
                                     from_port=443, to_port=443, tags=tags)
    aws.vpc.SecurityGroupIngressRule("db-from-lambda", security_group_id=db_sg.id,
                                     referenced_security_group_id=lambda_sg.id, ip_protocol="tcp",
                                     from_port=POSTGRES_PORT, to_port=POSTGRES_PORT, tags=tags)
    aws.vpc.SecurityGroupEgressRule("lambda-to-endpoints", security_group_id=lambda_sg.id,
                                    referenced_security_group_id=endpoints_sg.id, ip_protocol="tcp",
                                    from_port=443, to_port=443, tags=tags)
    aws.vpc.SecurityGroupEgressRule("lambda-to-db", security_group_id=lambda_sg.id,
                                    referenced_security_group_id=db_sg.id, ip_protocol="tcp",
                                    from_port=POSTGRES_PORT, to_port=POSTGRES_PORT, tags=tags)
    s3_endpoint = aws.ec2.VpcEndpoint(
        "s3-endpoint", vpc_id=vpc.id, service_name=f"com.amazonaws.{region}.s3", vpc_endpoint_type="Gateway",
        route_table_ids=[route_table.id], tags=tags)
    aws.vpc.SecurityGroupEgressRule("lambda-to-s3", security_group_id=lambda_sg.id,
                                    prefix_list_id=s3_endpoint.prefix_list_id, ip_protocol="tcp",
                                    from_port=443, to_port=443, tags=tags)
    for service in INTERFACE_ENDPOINTS:
        aws.ec2.VpcEndpoint(
            f"{service}-endpoint", vpc_id=vpc.id, service_name=f"com.amazonaws.{region}.{service}",
            vpc_endpoint_type="Interface", private_dns_enabled=True, subnet_ids=subnet_ids,
            security_group_ids=[endpoints_sg.id], tags=tags)

    # -- security: the stack's KMS key ---------------------------------------------------------
    identity = aws.get_caller_identity()
    account = identity.account_id
    key = aws.kms.Key(
        "stack-key",
        description=f"{settings.prefix}: queues, topics, buckets, secrets and function environments",
        enable_key_rotation=True,
        deletion_window_in_days=30 if p.environment == "prod" else 7,
        policy=json.dumps(key_policy(settings, account)),
        tags=tags,
    )
    aws.kms.Alias("stack-key-alias", name=f"alias/{settings.prefix}", target_key_id=key.key_id)

    # -- storage -------------------------------------------------------------------------------
    buckets = {role: _bucket(settings, role, key.arn) for role in ("uploads", "processed", "artifacts")}
    aws.s3.BucketLifecycleConfiguration(
        "uploads-lifecycle", bucket=buckets["uploads"].id,
        rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-processed-uploads", status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=p.uploads.prefix),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=30),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=1),
        )])

    # -- database --------------------------------------------------------------------------------
    db_password = random.RandomPassword("db-password", length=32, special=False)
    subnet_group = aws.rds.SubnetGroup("db-subnets", name=settings.name("db"), subnet_ids=subnet_ids, tags=tags)
    parameters = aws.rds.ParameterGroup(
        "db-params", name=settings.name("pg16"), family="postgres16",
        parameters=[aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")], tags=tags)
    db = aws.rds.Instance(
        "db",
        identifier=settings.name("db"),
        engine="postgres", engine_version="16",
        instance_class=f.db_instance_class,
        allocated_storage=f.db_allocated_storage_gb,
        storage_encrypted=True, kms_key_id=key.arn,
        db_name="workbook", username="workbook", password=db_password.result,
        db_subnet_group_name=subnet_group.name, parameter_group_name=parameters.name,
        vpc_security_group_ids=[db_sg.id],
        multi_az=f.db_multi_az,
        deletion_protection=f.db_deletion_protection,
        skip_final_snapshot=not f.db_deletion_protection,
        final_snapshot_identifier=settings.name("db-final") if f.db_deletion_protection else None,
        backup_retention_period=7 if p.environment == "prod" else 1,
        publicly_accessible=False,
        performance_insights_enabled=True, performance_insights_kms_key_id=key.arn,
        tags=tags,
    )

    # -- secrets ---------------------------------------------------------------------------------
    db_secret = _secret(settings, "db", key.arn, pulumi.Output.all(db.address, db.port, db_password.result).apply(
        lambda v: json.dumps({"host": v[0], "port": v[1], "username": "workbook", "password": v[2],
                              "dbname": "workbook"})))
    jwt_key = random.RandomPassword("jwt-key", length=64, special=False)
    jwt_secret = _secret(settings, "jwt", key.arn, jwt_key.result.apply(lambda k: json.dumps({"hs256_key": k})))
    webhook_token = random.RandomPassword("webhook-token", length=40, special=False)
    service_key = random.RandomPassword("service-api-key", length=40, special=False)
    api_keys_secret = _secret(settings, "api-keys", key.arn, pulumi.Output.all(webhook_token.result, service_key.result).apply(
        lambda v: json.dumps({"webhook_url": f"https://hooks.{p.deploy_domain}/workbook", "webhook_token": v[0],
                              "api_keys": {"service": v[1]}})))

    return {
        "vpcId": vpc.id,
        "privateSubnetIds": pulumi.Output.all(*subnet_ids),
        "lambdaSecurityGroupId": lambda_sg.id,
        "kmsKeyArn": key.arn,
        "uploadsBucketName": buckets["uploads"].bucket,
        "uploadsBucketArn": buckets["uploads"].arn,
        "processedBucketName": buckets["processed"].bucket,
        "processedBucketArn": buckets["processed"].arn,
        "artifactsBucketName": buckets["artifacts"].bucket,
        "artifactsBucketArn": buckets["artifacts"].arn,
        "dbEndpoint": db.endpoint,
        "dbSecretArn": db_secret.arn,
        "jwtSecretArn": jwt_secret.arn,
        "apiKeysSecretArn": api_keys_secret.arn,
    }


def key_policy(settings: Settings, account: str) -> dict[str, Any]:
    """The stack key's policy: the account administers it through IAM (AWS's default statement,
    which lets the roles' identity policies grant its use), and each publisher of
    ``KEY_PUBLISHERS`` may generate and decrypt data keys for this deployment's topics or queues."""
    values = {"region": settings.params.aws_region, "account": account, "prefix": settings.prefix}
    statements: list[dict[str, Any]] = [
        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
    ]
    for sid, publisher, encrypting_service, source_arn in KEY_PUBLISHERS:
        context_key, context_value = ENCRYPTION_CONTEXT[encrypting_service]
        condition: dict[str, dict[str, str]] = {"StringLike": {context_key: context_value.format(**values)}}
        if source_arn is not None:
            condition["StringEquals"] = {"aws:SourceAccount": account}
            condition["ArnLike"] = {"aws:SourceArn": source_arn.format(**values)}
        statements.append({
            "Sid": sid, "Effect": "Allow", "Principal": {"Service": f"{publisher}.amazonaws.com"},
            # Exactly what SNS and SQS call for a publisher; GenerateDataKey* would add key pairs.
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*", "Condition": condition,
        })
    return {"Version": "2012-10-17", "Statement": statements}


def _bucket(settings: Settings, role: str, kms_key_arn: pulumi.Input[str]) -> aws.s3.Bucket:
    """A private, versioned, KMS-encrypted bucket that refuses plain HTTP."""
    bucket = aws.s3.Bucket(role, bucket=settings.name(role), force_destroy=settings.env != "prod", tags=settings.tags)
    aws.s3.BucketPublicAccessBlock(f"{role}-public-access", bucket=bucket.id, block_public_acls=True,
                                   block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    aws.s3.BucketOwnershipControls(f"{role}-ownership", bucket=bucket.id,
                                   rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"))
    aws.s3.BucketVersioning(f"{role}-versioning", bucket=bucket.id,
                            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"))
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{role}-encryption", bucket=bucket.id,
        rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            bucket_key_enabled=True,
            apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn))])
    aws.s3.BucketPolicy(f"{role}-tls-only", bucket=bucket.id, policy=iam.document([{
        # Every S3 action, not only Get/PutObject: listing, deleting or changing the bucket over
        # plain HTTP is refused too.
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]))
    return bucket


def _secret(settings: Settings, role: str, kms_key_arn: pulumi.Input[str],
            value: pulumi.Output[str]) -> aws.secretsmanager.Secret:
    secret = aws.secretsmanager.Secret(
        f"{role}-secret", name=settings.name(role), kms_key_id=kms_key_arn,
        recovery_window_in_days=30 if settings.env == "prod" else 0, tags=settings.tags)
    aws.secretsmanager.SecretVersion(f"{role}-secret-value", secret_id=secret.id,
                                     secret_string=pulumi.Output.secret(value))
    return secret

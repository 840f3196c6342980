"""The standalone foundation program (dev and local deploy it; staging and prod reference platform stacks)."""
from __future__ import annotations

import json

import pytest

from infra.foundation_refs import EXPORTS
from tests.infra.conftest import plan_for

STANDALONE = ("dev", "local")


@pytest.fixture(params=STANDALONE)
def fplan(request):
    return plan_for(request.param)


def found(plan, type_token):
    return plan.of_type(type_token, stack="foundation")


def test_standalone_envs_plan_the_foundation_and_others_do_not():
    for env in STANDALONE:
        assert found(plan_for(env), "aws:ec2/vpc:Vpc")
    for env in ("staging", "prod"):
        assert not plan_for(env).of_type("aws:ec2/vpc:Vpc")


def test_exports_exactly_what_the_compute_stack_reads(fplan):
    assert set(fplan.foundation_outputs) == {name for names in EXPORTS.values() for name in names}


def test_vpc_has_private_subnets_only(fplan):
    subnets = found(fplan, "aws:ec2/subnet:Subnet")
    assert len(subnets) >= 2
    assert all(s["inputs"]["mapPublicIpOnLaunch"] is False for s in subnets)
    assert not found(fplan, "aws:ec2/internetGateway:InternetGateway")
    assert len({s["inputs"]["availabilityZone"] for s in subnets}) == len(subnets)


def test_endpoints_for_s3_sqs_sns_and_secrets_manager(fplan):
    services = {e["inputs"]["serviceName"].rsplit(".", 1)[1]: e["inputs"] for e in found(fplan, "aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert set(services) == {"s3", "sqs", "sns", "secretsmanager"}
    assert services["s3"]["vpcEndpointType"] == "Gateway"
    for name in ("sqs", "sns", "secretsmanager"):
        assert services[name]["vpcEndpointType"] == "Interface" and services[name]["privateDnsEnabled"] is True


def test_database_reachable_only_from_the_lambda_security_group(fplan):
    ingress = found(fplan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert ingress and all(r["inputs"].get("referencedSecurityGroupId") for r in ingress)
    assert not any(r["inputs"].get("cidrIpv4") for r in ingress)


def test_kms_key_rotates(fplan):
    (key,) = found(fplan, "aws:kms/key:Key")
    assert key["inputs"]["enableKeyRotation"] is True


def test_buckets_private_versioned_encrypted(fplan):
    buckets = found(fplan, "aws:s3/bucket:Bucket")
    assert {b["name"] for b in buckets} == {"uploads", "processed", "artifacts"}
    blocks = found(fplan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert len(blocks) == 3 and all(b["inputs"]["blockPublicPolicy"] for b in blocks)
    encryption = found(fplan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert all(e["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms" for e in encryption)


def test_rds_postgres_private_encrypted(fplan):
    (db,) = found(fplan, "aws:rds/instance:Instance")
    inputs = db["inputs"]
    assert inputs["engine"] == "postgres" and inputs["engineVersion"].startswith("16")
    assert inputs["storageEncrypted"] is True and inputs["publiclyAccessible"] is False


def test_secrets_are_kms_encrypted_and_masked_in_the_plan(fplan):
    secrets = found(fplan, "aws:secretsmanager/secret:Secret")
    assert {s["name"] for s in secrets} == {"db-secret", "jwt-secret", "api-keys-secret"}
    for version in found(fplan, "aws:secretsmanager/secretVersion:SecretVersion"):
        assert version["inputs"]["secretString"] == "[secret]"
    assert "plan-" not in json.dumps(fplan.to_dict())

"""The six functions, under the mocks, for every environment."""
from __future__ import annotations

import pytest

from infra import specs
from tests.infra.conftest import FUNCTION, ROLE_POLICY, by_name, compute, plan_for


def functions(plan, settings):
    found = by_name(plan, FUNCTION)
    return {key: found[settings.function_name(key)]["inputs"] for key in specs.FUNCTION_KEYS}


def test_six_functions_with_the_specs_handlers(plan, settings):
    fns = functions(plan, settings)
    assert len(compute(plan, FUNCTION)) == 6
    for key, inputs in fns.items():
        assert inputs["handler"] == f"{key.replace('-', '_')}.handler"
        assert inputs["runtime"] == "python3.12"


def test_memory_and_timeout_resolve_from_specs_and_params(plan, settings):
    for key, inputs in functions(plan, settings).items():
        resolved = settings.function(key)
        assert inputs["memorySize"] == resolved.memory_mb
        assert inputs["timeout"] == resolved.timeout_s


def test_prod_runs_the_table_sizes():
    plan = plan_for("prod")
    from infra import config

    settings = config.load("prod")
    expected = {"api-processor": (512, 30), "data-processor": (1024, 300), "file-processor": (2048, 300),
                "scheduler": (512, 600), "notification-handler": (256, 60), "auth-handler": (256, 30)}
    fns = functions(plan, settings)
    assert {k: (v["memorySize"], v["timeout"]) for k, v in fns.items()} == expected


def test_dev_timeouts_are_more_generous_than_prod():
    from infra import config

    dev, prod = config.load("dev"), config.load("prod")
    for key in specs.FUNCTION_KEYS:
        assert dev.function(key).timeout_s >= prod.function(key).timeout_s
    assert any(dev.function(k).timeout_s > prod.function(k).timeout_s for k in specs.FUNCTION_KEYS)


def test_each_function_has_its_own_role(plan, settings):
    roles = [inputs["role"] for inputs in functions(plan, settings).values()]
    assert len(set(roles)) == 6


def test_each_function_has_an_explicit_log_group_with_env_retention(plan, settings):
    groups = by_name(plan, "aws:cloudwatch/logGroup:LogGroup")
    for key, inputs in functions(plan, settings).items():
        name = f"/aws/lambda/{settings.function_name(key)}"
        assert groups[name]["inputs"]["retentionInDays"] == settings.params.log_retention_days
        assert inputs["loggingConfig"]["logGroup"] == name


def test_json_logs_with_env_levels(plan, settings):
    for inputs in functions(plan, settings).values():
        logging = inputs["loggingConfig"]
        assert logging["logFormat"] == "JSON"
        assert logging["applicationLogLevel"] == settings.params.application_log_level
        assert logging["systemLogLevel"] == settings.params.system_log_level


def test_dev_logs_debug_and_prod_logs_info():
    from infra import config

    assert config.load("dev").params.application_log_level == "DEBUG"
    assert config.load("prod").params.application_log_level == "INFO"


def test_tracing_active_and_environment_encrypted_with_stack_key(plan, settings):
    kms = plan.foundation_outputs["kmsKeyArn"]
    for inputs in functions(plan, settings).values():
        assert inputs["tracingConfig"] == {"mode": "Active"}
        assert inputs["kmsKeyArn"] == kms
        assert inputs["environment"]["variables"]["WORKBOOK_ENV"] == settings.env


def test_shared_layer_and_architecture_from_params(plan, settings):
    layers = {r["inputs"]["layerName"]: r for r in compute(plan, "aws:lambda/layerVersion:LayerVersion")}
    for key, inputs in functions(plan, settings).items():
        arch = settings.function(key).architecture
        assert inputs["architectures"] == [arch]
        common = f"{settings.prefix}-common-{arch}"
        assert common in layers
        assert layers[common]["inputs"]["compatibleArchitectures"] == [arch]
        assert any(common in layer for layer in inputs["layers"])


def test_function_package_holds_only_its_module_and_layer_holds_common(plan, settings):
    for key, inputs in functions(plan, settings).items():
        assert list(inputs["code"]["archive"]) == [f"{key.replace('-', '_')}.py"]
    for layer in compute(plan, "aws:lambda/layerVersion:LayerVersion"):
        assert "python/common" in layer["inputs"]["code"]["archive"]


def test_api_processor_in_vpc_private_subnets_and_lambda_sg(plan, settings):
    fns = functions(plan, settings)
    vpc = fns["api-processor"]["vpcConfig"]
    assert vpc["subnetIds"] == plan.foundation_outputs["privateSubnetIds"]
    assert vpc["securityGroupIds"] == [plan.foundation_outputs["lambdaSecurityGroupId"]]
    assert "vpcConfig" not in fns["auth-handler"] or not fns["auth-handler"]["vpcConfig"]


ENI_ACTIONS = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
               "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}


def test_vpc_functions_get_exact_eni_permissions_instead_of_the_managed_policy(plan, settings):
    # The managed AWSLambdaVPCAccessExecutionRole also grants logs:* on "*": never attached.
    assert not compute(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", may_be_empty=True)
    from tests.infra.conftest import policy_of

    policies = {p["inputs"]["name"]: policy_of(p) for p in compute(plan, ROLE_POLICY)}
    from infra.mocks import ACCOUNT_ID

    region, account = settings.params.aws_region, ACCOUNT_ID
    ec2 = f"arn:aws:ec2:{region}:{account}"
    for spec in specs.FUNCTIONS:
        statements = {s["Sid"]: s for s in policies[f"{spec.key}-least-privilege"]["Statement"]}
        granted = {a for s in statements.values() for a in s["Action"] if a.startswith("ec2:")}
        if not spec.in_vpc:
            assert not granted, spec.key
            continue
        assert granted == ENI_ACTIONS, spec.key
        create = statements["CreateEnisInOwnSubnets"]["Resource"]
        subnets = [f"{ec2}:subnet/{s}" for s in plan.foundation_outputs["privateSubnetIds"]]
        group = f"{ec2}:security-group/{plan.foundation_outputs['lambdaSecurityGroupId']}"
        assert sorted(create) == sorted([f"{ec2}:network-interface/*", *subnets, group])
        manage = statements["ManageEnisInOwnVpc"]
        assert manage["Resource"] == [f"{ec2}:network-interface/*"]
        assert manage["Condition"] == {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/{plan.foundation_outputs['vpcId']}"}}
        assert statements["DescribeEnis"]["Resource"] == ["*"]
        assert not any(a.startswith("logs:") for s in statements.values() for a in s["Action"]
                       if "*" in s["Resource"]), spec.key


def test_auth_handler_gets_the_secrets_extension_layer_for_region_and_arch(env, plan, settings):
    inputs = functions(plan, settings)["auth-handler"]
    layer = settings.params.region_layer_arn
    if layer is None:
        assert env == "local"
        return
    arch = settings.function("auth-handler").architecture
    assert getattr(layer, arch) in inputs["layers"]
    assert ("Arm64" in getattr(layer, arch)) == (arch == "arm64")


def test_auth_handler_reads_its_secret_and_nothing_else(plan, settings):
    policies = {p["inputs"]["name"]: p for p in compute(plan, ROLE_POLICY)}
    from tests.infra.conftest import policy_of

    doc = policy_of(policies["auth-handler-least-privilege"])
    secret_statements = [s for s in doc["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in secret_statements] == [[plan.foundation_outputs["jwtSecretArn"]]]


@pytest.mark.parametrize("key", ["file-processor", "scheduler", "notification-handler"])
def test_async_functions_have_event_invoke_config_with_on_failure(plan, settings, key):
    configs = {c["inputs"]["functionName"]: c["inputs"] for c in
               compute(plan, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")}
    inputs = configs[settings.function_name(key)]
    assert inputs["maximumRetryAttempts"] == settings.params.async_invoke.maximum_retry_attempts
    assert inputs["maximumEventAgeInSeconds"] == settings.params.async_invoke.maximum_event_age_s
    destination = inputs["destinationConfig"]["onFailure"]["destination"]
    assert destination.endswith(f"{settings.prefix}-{key}-failures")


def test_synchronous_functions_have_no_async_config(plan, settings):
    configs = {c["inputs"]["functionName"] for c in
               compute(plan, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")}
    assert settings.function_name("api-processor") not in configs
    assert settings.function_name("auth-handler") not in configs
    assert settings.function_name("data-processor") not in configs

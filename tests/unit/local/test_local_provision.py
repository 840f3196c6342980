"""Provisioning derives every data-plane resource from the offline plan (moto in process)."""
from __future__ import annotations

import copy
import json

import pytest

moto = pytest.importorskip("moto")

from infra import config, specs
from infra import environment as contract
from workbook.local import provision

DATABASE_SECRET = {"host": "127.0.0.1", "port": 5432, "username": "postgres", "password": "x", "dbname": "workbook"}


@pytest.fixture(scope="module")
def plan() -> dict:
    from workbook.deploy.plan import offline_plan

    return offline_plan("local").to_dict()


@pytest.fixture
def provisioned(plan, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3

    with moto.mock_aws():
        clients: dict = {}

        def client(service: str):
            if service not in clients:
                clients[service] = boto3.client(service, region_name="us-east-1")
            return clients[service]

        topology = provision.provision(plan, config.load("local"), client, database_secret=DATABASE_SECRET,
                                       webhook_url="http://127.0.0.1:9/webhook")
        yield topology, client


def _of(plan: dict, type_token: str) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] == type_token]


def test_every_queue_of_the_plan_exists_with_its_redrive_and_visibility(plan, provisioned):
    topology, client = provisioned
    sqs = client("sqs")
    for resource in _of(plan, provision.T_QUEUE):
        inputs = resource["inputs"]
        url = sqs.get_queue_url(QueueName=inputs["name"])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if "visibilityTimeoutSeconds" in inputs:
            assert int(attributes["VisibilityTimeout"]) == inputs["visibilityTimeoutSeconds"]
        if inputs.get("redrivePolicy"):
            expected = json.loads(inputs["redrivePolicy"])
            actual = json.loads(attributes["RedrivePolicy"])
            assert actual["deadLetterTargetArn"] == expected["deadLetterTargetArn"]
            assert int(actual["maxReceiveCount"]) == expected["maxReceiveCount"]
    settings = config.load("local")
    task = next(m for m in topology["event_source_mappings"] if m["function"] == settings.function_name("data-processor"))
    assert task["batch_size"] == settings.params.task_queue.batch_size
    assert task["batching_window_s"] == settings.params.task_queue.batching_window_s
    assert task["report_batch_item_failures"] is True
    assert task["maximum_concurrency"] == settings.params.task_queue.max_concurrency


def test_topics_subscriptions_buckets_notifications_and_log_groups(plan, provisioned):
    topology, client = provisioned
    topics = {t["TopicArn"].rsplit(":", 1)[-1] for t in client("sns").list_topics()["Topics"]}
    assert {r["inputs"]["name"] for r in _of(plan, provision.T_TOPIC)} <= topics
    subscriptions = client("sns").list_subscriptions()["Subscriptions"]
    for resource in _of(plan, provision.T_SUBSCRIPTION):
        assert any(s["TopicArn"] == resource["inputs"]["topic"] and s["Endpoint"] == resource["inputs"]["endpoint"]
                   for s in subscriptions)
    buckets = {b["Name"] for b in client("s3").list_buckets()["Buckets"]}
    assert {r["inputs"]["bucket"] for r in _of(plan, "aws:s3/bucket:Bucket")} <= buckets
    notification = _of(plan, provision.T_NOTIFICATION)[0]["inputs"]
    configured = client("s3").get_bucket_notification_configuration(Bucket=notification["bucket"])["QueueConfigurations"]
    assert len(configured) == len(notification["lambdaFunctions"])
    suffixes = {rule["Value"] for c in configured for rule in c["Filter"]["Key"]["FilterRules"] if rule["Name"] == "suffix"}
    assert suffixes == {entry["filterSuffix"] for entry in notification["lambdaFunctions"]}
    groups = {g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]}
    assert {r["inputs"]["name"] for r in _of(plan, provision.T_LOG_GROUP)} <= groups


def test_secrets_are_fresh_and_in_the_handlers_formats(plan, provisioned):
    topology, client = provisioned
    manager = client("secretsmanager")
    refs = topology["refs"]
    db = json.loads(manager.get_secret_value(SecretId=refs["db_secret_arn"])["SecretString"])
    assert db == DATABASE_SECRET
    jwt = json.loads(manager.get_secret_value(SecretId=refs["jwt_secret_arn"])["SecretString"])
    assert set(jwt) == {"hs256_key"} and len(jwt["hs256_key"]) >= 32
    keys = json.loads(manager.get_secret_value(SecretId=refs["api_keys_secret_arn"])["SecretString"])
    assert set(keys) == {"webhook_url", "webhook_token", "api_keys"}


def test_functions_get_exactly_the_contract_environment_with_local_identifiers(plan, provisioned):
    topology, _ = provisioned
    settings = config.load("local")
    by_key = {f["key"]: f for f in topology["functions"]}
    assert set(by_key) == set(specs.FUNCTION_KEYS)
    for key, function in by_key.items():
        effective = settings.function(key)
        assert function["memory_mb"] == effective.memory_mb and function["timeout_s"] == effective.timeout_s
        assert function["reserved_concurrency"] == effective.reserved_concurrency
        refs = {ref: topology["refs"][ref] for ref in contract.refs_for(key)}
        expected = {k: str(v) for k, v in contract.function_environment(settings, key, refs).items()}
        assert function["environment"] == expected, key
    # secrets carry moto's ARNs (the plan's mock suffixes do not exist locally)
    assert topology["refs"]["db_secret_arn"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:")


def test_an_unsupported_event_source_is_a_clear_error(provisioned):
    _, client = provisioned
    plan = {"resources": [{"type": provision.T_MAPPING, "name": "stream", "inputs": {
        "eventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s", "functionName": "f"}}]}
    with pytest.raises(provision.ProvisioningError, match="only SQS event sources"):
        provision.provision(plan, config.load("local"), client)


def test_a_malformed_plan_resource_names_the_step(provisioned):
    _, client = provisioned
    plan = {"resources": [{"type": provision.T_INVOKE_CONFIG, "name": "broken", "inputs": {"maximumRetryAttempts": 1}}]}
    with pytest.raises(provision.ProvisioningError, match="invoke configs do not have the expected shape"):
        provision.provision(plan, config.load("local"), client)


def test_a_copy_of_a_stack_function_runs_the_package_its_function_tag_names(plan, provisioned):
    # GIVEN the plan with a copy of the file processor under another name (a test's throttled twin),
    # and one function with a name and tags of no stack function
    _, client = provisioned
    (original,) = [r for r in _of(plan, provision.T_FUNCTION) if r["inputs"]["tags"]["Function"] == "file-processor"]
    twin, stray = copy.deepcopy(original), copy.deepcopy(original)
    twin["name"], twin["inputs"]["name"] = "twin", "lwb-local-l01-twin"
    stray["name"], stray["inputs"]["name"] = "stray", "lwb-local-l01-stray"
    stray["inputs"]["tags"] = {"Environment": "local"}
    settings = config.load("local")
    # WHEN the plan with the twin is provisioned, THEN the twin runs the file processor's package
    topology = provision.provision({"resources": [*plan["resources"], twin]}, settings, client,
                                   database_secret=DATABASE_SECRET, webhook_url="http://127.0.0.1:9/webhook")
    by_name = {f["function_name"]: f for f in topology["functions"]}
    assert by_name["lwb-local-l01-twin"]["code_paths"] == by_name[settings.function_name("file-processor")]["code_paths"]
    # AND a function with no Function tag is refused, saying why
    with pytest.raises(provision.ProvisioningError, match="has no Function tag naming one"):
        provision.provision({"resources": [*plan["resources"], stray]}, settings, client,
                            database_secret=DATABASE_SECRET, webhook_url="http://127.0.0.1:9/webhook")

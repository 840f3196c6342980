"""The whole stack on the embedded default: real plan, real handlers, CLI, HTTP endpoints, stop.

One environment (from the offline plan of params/local.yaml) serves the module; the last test
stops it and checks that nothing it started is left running.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from local_helpers import local_environment

from infra import config
from workbook import aws
from workbook.local import manager, services

pytestmark = pytest.mark.timeout(240)
REPO = Path(__file__).resolve().parents[3]
SETTINGS = config.load("local")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_environment(tmp_path_factory.mktemp("local-stack")) as (recorded, _):
        yield recorded


def workbook(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the ``workbook`` CLI in a child process against the module's environment."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    return subprocess.run([sys.executable, "-m", "workbook.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def http(url: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def health_event() -> dict:
    return {"version": "2.0", "routeKey": "GET /health", "rawPath": "/health", "rawQueryString": "",
            "headers": {"host": "localhost"}, "isBase64Encoded": False,
            "requestContext": {"accountId": "123456789012", "apiId": "local", "domainName": "localhost",
                               "domainPrefix": "localhost", "requestId": "r1", "routeKey": "GET /health",
                               "stage": "$default", "time": "27/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
                               "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "test"}}}


def test_status_says_which_cpu_limit_is_in_force(stack):
    result = workbook("local", "status")
    assert result.returncode == 0, result.stderr
    assert "running:       yes" in result.stdout
    assert ("cgroup-v1 cpu.cfs_quota_us" in result.stdout) or ("SIGSTOP/SIGCONT" in result.stdout)
    again = workbook("local", "start")
    assert again.returncode == 0 and "already running" in again.stderr


def test_invoke_prints_the_response_and_the_report(stack, tmp_path):
    event_file = tmp_path / "health.json"
    event_file.write_text(json.dumps(health_event()))
    result = workbook("local", "invoke", "api-processor", "--event", str(event_file))
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    report = [line for line in result.stderr.splitlines() if line.startswith("REPORT RequestId:")]
    assert report and "\tMemory Size: 512 MB\t" in report[0]
    # --memory runs the same function at another size (a separate set of environments)
    bigger = workbook("local", "invoke", "api-processor", "--event", "-", "--memory", "1024",
                      stdin=json.dumps(health_event()))
    assert bigger.returncode == 0 and "Memory Size: 1024 MB" in bigger.stderr


def test_boto3_lambda_client_invokes_through_the_engine(stack):
    import base64

    import boto3

    manager.activate()   # exports AWS_ENDPOINT_URL_LAMBDA: a plain client finds the engine's Invoke API
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    response = client.invoke(FunctionName=SETTINGS.function_name("api-processor"), LogType="Tail",
                             Payload=json.dumps(health_event()).encode())
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert json.loads(response["Payload"].read())["statusCode"] == 200
    assert '"platform.report"' in base64.b64decode(response["LogResult"]).decode()
    queued = client.invoke(FunctionName="scheduler", InvocationType="Event", Payload=b"{}")
    assert queued["StatusCode"] == 202
    failed = client.invoke(FunctionName="scheduler", Payload=b'{"not": "a schedule"}')
    assert failed["FunctionError"] == "Unhandled"


def test_invoke_shows_function_errors_like_aws_lambda_invoke(stack):
    result = workbook("local", "invoke", "scheduler", "--event", "-", stdin='{"not": "a schedule"}')
    assert result.returncode == 1
    assert "errorType" in json.loads(result.stdout)
    assert '"FunctionError": "Unhandled"' in result.stderr
    # the request's own log lines are on stderr, and the last line says where all of them are
    assert '"scheduler run failed"' in result.stderr
    assert "START RequestId" in result.stderr or '"type":"platform.start"' in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("workbook local: the function failed; full logs: "
                                                               "aws logs tail /aws/lambda/")


def test_invoke_says_why_records_failed_and_where_the_logs_are(stack):
    # GIVEN an SQS record data-processor cannot read
    event = {"Records": [{"messageId": "m-bad", "body": "not json", "eventSource": "aws:sqs",
                          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                          "attributes": {"ApproximateReceiveCount": "1"}}]}
    result = workbook("local", "invoke", "data-processor", "--event", "-", stdin=json.dumps(event))
    # THEN the response names the failed record, and stderr shows the function's reason and the logs' place
    assert result.returncode == 0 and json.loads(result.stdout) == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    assert '"message_id":"m-bad"' in result.stderr and "message body is not valid JSON" in result.stderr
    last = result.stderr.rstrip().splitlines()[-1]
    assert "1 record(s) reported in batchItemFailures" in last and "aws logs tail /aws/lambda/" in last


@pytest.mark.parametrize("args, stdin, message", [
    (("local", "invoke", "no-such-function", "--event", "-"), "{}", "unknown function 'no-such-function'"),
    (("local", "invoke", "api-processor", "--event", "-"), "{not json", "not valid JSON at line 1, column 2"),
    (("local", "invoke", "api-processor", "--event", "-"), "", "empty"),
    (("local", "invoke", "api-processor", "--event", "/no/such/event.json"), None, "no such file"),
    (("local", "invoke", "api-processor", "--event", "-", "--memory", "64"), "{}", "out of range"),
    (("local", "traffic", "--duration", "forever"), None, "expected a number"),
    (("local", "traffic", "--bad-share", "2"), None, "between 0 and 1"),
])
def test_cli_rejects_malformed_input(stack, args, stdin, message):
    result = workbook(*args, stdin=stdin)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr


def test_start_with_an_unknown_environment_fails_before_starting_anything(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env["WORKBOOK_STATE_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "workbook.cli", "local", "start", "--env", "nowhere"],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert result.returncode == 2 and "nowhere" in result.stderr
    assert not (tmp_path / "state.json").exists()


def test_cli_rejects_unknown_sub_commands_and_profiles():
    result = workbook("local", "traffic", "--profile", "chaotic")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = workbook("local", "invoke", "api-processor")
    assert result.returncode == 2 and "--event" in result.stderr


def test_http_api_runs_the_authorizer_with_the_secrets_extension(stack):
    base = manager.endpoints(stack)["http_api"]
    status, _, body = http(f"{base}/health")
    assert status == 200, body
    assert http(f"{base}/items")[0] == 401                                      # no identity source
    assert http(f"{base}/items", headers={"Authorization": "Bearer x.y.z"})[0] == 403
    import jwt

    manager.activate()
    arn = json.loads((Path(stack["state_dir"]) / "topology.json").read_text())["refs"]["jwt_secret_arn"]
    key = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])["hs256_key"]
    now = int(time.time())
    token = jwt.encode({"iss": SETTINGS.params.jwt.issuer, "aud": SETTINGS.params.jwt.audience, "sub": "tester",
                        "iat": now, "exp": now + 600, "scope": "items:read items:write"}, key, algorithm="HS256")
    status, _, body = http(f"{base}/items", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body


def test_the_stage_writes_access_logs_in_its_format(stack):
    base = manager.endpoints(stack)["http_api"]
    assert http(f"{base}/health")[0] == 200
    assert http(f"{base}/items")[0] == 401
    manager.activate()
    group = "/aws/apigateway/" + SETTINGS.name("api")

    def lines() -> list[dict]:
        events = aws.client("logs").filter_log_events(logGroupName=group)["events"]
        return [json.loads(e["message"]) for e in events]

    deadline = time.monotonic() + 15
    while len(lines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    entries = lines()
    assert {"routeKey": "GET /health", "status": "200"}.items() <= next(
        e for e in entries if e["routeKey"] == "GET /health").items()
    denied = next(e for e in entries if e["status"] == "401")
    assert denied["routeKey"] == "ANY /items" and denied["authorizerError"] == "Unauthorized"


def test_secrets_extension_requires_an_environment_session_token(stack):
    url = f"{manager.endpoints(stack)['secrets_extension']}/secretsmanager/get?secretId={SETTINGS.name('jwt')}"
    assert http(url)[0] == 401
    assert http(url, headers={"X-Aws-Parameters-Secrets-Token": "not-a-session-token"})[0] == 401


def test_function_url_answers_cors_preflight_and_requires_iam_auth(stack):
    url = manager.endpoints(stack)["function_url"]
    origin = f"https://{SETTINGS.params.deploy_domain}"
    status, headers, _ = http(f"{url}/health", "OPTIONS", {"Origin": origin, "Access-Control-Request-Method": "GET"})
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == origin
    assert "GET" in headers.get("Access-Control-Allow-Methods", "")
    assert http(f"{url}/health", headers={"Origin": origin})[0] == 403


def test_logs_and_metrics_land_on_the_local_endpoint(stack):
    manager.activate()
    name = SETTINGS.function_name("api-processor")

    def reports() -> list[str]:
        events = aws.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        return [e["message"] for e in events if '"platform.report"' in e["message"]]

    deadline = time.monotonic() + 15
    while not reports() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert reports()

    def metric_names() -> set[str]:
        metrics = aws.client("cloudwatch").list_metrics(Namespace="AWS/Lambda")["Metrics"]
        return {m["MetricName"] for m in metrics
                if {"Name": "FunctionName", "Value": name} in m.get("Dimensions", [])}

    deadline = time.monotonic() + 20
    while not {"Invocations", "Duration"} <= metric_names() and time.monotonic() < deadline:
        time.sleep(1)
    assert {"Invocations", "Errors", "Duration", "ConcurrentExecutions"} <= metric_names()


def test_an_upload_flows_through_s3_eventbridge_sns_and_sqs_to_the_webhook(stack):
    # GIVEN the stack's wiring: uploads -> file-processor (async) -> FileProcessed on the bus ->
    # rule -> notifications topic -> notification queue -> notification-handler -> webhook
    manager.activate()
    key = f"{SETTINGS.params.uploads.prefix}flow-{int(time.time())}.txt"
    aws.client("s3").put_object(Bucket=SETTINGS.name("uploads"), Key=key, Body=b"one\ntwo\n")
    deliveries_url = f"{manager.control_url(stack)}/webhook-deliveries"

    def delivered() -> bool:
        with urllib.request.urlopen(deliveries_url, timeout=10) as response:
            return any(key.rsplit("/", 1)[-1] in d["body"] for d in json.loads(response.read()))

    deadline = time.monotonic() + 60
    while not delivered() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert delivered()


def test_traffic_prints_a_summary_per_function_from_the_logs(stack):
    result = workbook("local", "traffic", "--profile", "mixed", "--duration", "4s", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert "[" in result.stderr and "sent:" in result.stderr             # the progress bar
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("function"))
    rows = {line.split()[0]: line.split() for line in lines[header + 1:header + 7]}
    assert set(rows) == {"api-processor", "data-processor", "file-processor", "scheduler",
                         "notification-handler", "auth-handler"}
    assert int(rows["api-processor"][1]) > 0
    assert "bad inputs:" in lines[0]


def test_power_tuning_invoker_drives_the_running_environment(stack):
    from workbook.tuning import invokers
    from workbook.tuning.sandbox_invoker import SandboxInvoker

    invoker = invokers.make_invoker(SETTINGS, "api-processor")      # what --env local uses
    assert isinstance(invoker, SandboxInvoker) and invoker.function_name == SETTINGS.function_name("api-processor")
    try:
        invoker.set_memory(256)
        first = invoker.invoke(health_event())
        second = invoker.invoke(health_event())
        assert first.error is None and first.init_duration_ms is not None
        assert second.init_duration_ms is None and second.max_memory_used_mb > 0
    finally:
        invoker.cleanup()


def test_stop_leaves_nothing_running(stack):
    pids = [stack["moto"]["pid"], stack["postgres"]["pid"], stack["engine"]["pid"]]
    owner = stack["owner"]
    assert all(services.alive(pid) for pid in pids)
    assert manager.stop() is True
    assert not any(services.alive(pid) for pid in pids)
    marker = f"--owner={owner}".encode()
    leftovers = [entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit()
                 and marker in _cmdline(entry)]
    assert leftovers == []
    assert manager.current() is None and manager.status()["running"] is False
    assert workbook("local", "status").returncode == 3


def _cmdline(entry: Path) -> bytes:
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""

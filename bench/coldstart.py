"""Cold-start benchmark of the six handlers, each in fresh interpreters, against the local endpoint.

    .venv/bin/python bench/coldstart.py [--runs 10] [--warm 20] [--tracing] [--arch x86_64] [--no-layer] [--json FILE]

What it starts, all on loopback and torn down at the end: moto's server (the AWS endpoint), an
embedded PostgreSQL (pgserver), an emulation of the Parameters and Secrets Lambda Extension's
HTTP endpoint (for the auth handler) and a webhook that answers 200 (for notification-handler).

For every run, in an order shuffled per round so background load spreads evenly, it spawns:

* ``bare``: an interpreter that does nothing;
* ``boto3``: an interpreter that runs ``import boto3; boto3.client("secretsmanager")``;
* per handler, an interpreter that imports the handler (INIT), invokes it once with a realistic
  event (the cold path), then ``--warm`` more times (warm invocations).

Times are wall-clock from the spawn, so every figure includes the interpreter's own start-up,
as the baselines do (columns "net" subtract the bare interpreter). Reported: the median over
runs of INIT and of the cold path, the median warm invocation, and the ratios the issue sets as
targets: auth-handler's cold path <= 0.5x the boto3 baseline; every other handler's INIT <= 1.25x.
No assertion is made: this prints figures. It ends with the deployment package sizes.

Measured locally, not on Lambda. Outside Lambda tracing is off and the X-Ray SDK is not loaded
(handlers/common/tracer.py); the stack deploys with tracing Active, so ``--tracing`` adds rows
for the handlers as they start on Lambda, with the Powertools Tracer and the X-Ray SDK loaded.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = REPO_ROOT / "handlers"
EVENTS_DIR = REPO_ROOT / "tests" / "functional" / "events"
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(HANDLERS_DIR))

REGION = "us-east-1"
SESSION_TOKEN = "bench-session-token"
JWT_KEY = "bench-hs256-key-" + "0123456789abcdef" * 2
MARK = "BENCH_RESULT "

# The child: timestamps (epoch seconds) after import, after the first call, and warm durations.
CHILD = r"""
import json, os, sys, time
event = json.loads(os.environ.pop("BENCH_EVENT"))
warm = int(os.environ.pop("BENCH_WARM"))
import importlib
module = importlib.import_module(os.environ.pop("BENCH_MODULE"))
after_import = time.time()

class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 60_000

def invoke():
    return module.handler(json.loads(json.dumps(event)), Context())

first = invoke()
after_first = time.time()
warm_ms = []
for _ in range(warm):
    started = time.perf_counter()
    invoke()
    warm_ms.append((time.perf_counter() - started) * 1000)
print(%r + json.dumps({"after_import": after_import, "after_first": after_first, "warm_ms": warm_ms,
                       "first": first}, default=str), flush=True)
""" % MARK

BASELINES = {
    "bare": "import time; print(%r + str(time.time()))" % MARK,
    "boto3": "import boto3; boto3.client('secretsmanager'); import time; print(%r + str(time.time()))" % MARK,
}

TARGETS = {"auth-handler": ("cold", 0.5)}
XRAY_SUFFIX = "(X-Ray on)"
DEFAULT_TARGET = ("init", 1.25)


# --- local services ----------------------------------------------------------------------------

class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


def _serve(handler_class: type) -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, server.server_address[1]


def start_extension(secrets: dict[str, str]) -> tuple[ThreadingHTTPServer, int]:
    """The Parameters and Secrets Lambda Extension's GET /secretsmanager/get, on loopback."""
    from urllib.parse import parse_qs, urlsplit

    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            secret_id = parse_qs(urlsplit(self.path).query).get("secretId", [""])[0]
            if self.headers.get("X-Aws-Parameters-Secrets-Token") != SESSION_TOKEN:
                self._answer(403, {"message": "bad token"})
            elif secret_id not in secrets:
                self._answer(404, {"message": "not found"})
            else:
                self._answer(200, {"Name": secret_id, "SecretString": secrets[secret_id]})

    return _serve(Handler)


def start_webhook() -> tuple[ThreadingHTTPServer, int]:
    class Handler(_QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(200, {"ok": True})

    return _serve(Handler)


def hs256_token(now: int) -> str:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    header = segment({"alg": "HS256", "typ": "JWT"})
    payload = segment({"sub": "bench-user", "iss": "https://auth.local/", "aud": "lwb-api", "iat": now,
                       "exp": now + 3600, "scope": "items:read"})
    signature = hmac.new(JWT_KEY.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


class LocalStack:
    """moto server + pgserver + extension + webhook, with the resources the handlers touch."""

    def __init__(self) -> None:
        import boto3
        import pgserver
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        self.pg_dir = Path(tempfile.mkdtemp(prefix="lwb-bench-pg-"))
        self.pg = pgserver.get_server(str(self.pg_dir), cleanup_mode="stop")
        info = self.pg.get_postmaster_info()
        self.db_secret = {"host": str(info.socket_dir), "port": int(info.port or 5432), "username": "postgres",
                          "password": "", "dbname": "postgres"}
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.extension, self.extension_port = start_extension({"lwb-bench/jwt": json.dumps({"hs256_key": JWT_KEY})})
        self.webhook, self.webhook_port = start_webhook()

        def client(service: str):
            return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint,
                                aws_access_key_id="testing", aws_secret_access_key="testing")

        client("secretsmanager").create_secret(Name="lwb-bench/db", SecretString=json.dumps(self.db_secret))
        client("secretsmanager").create_secret(Name="lwb-bench/api-keys", SecretString=json.dumps(
            {"webhook_url": f"http://127.0.0.1:{self.webhook_port}/hook", "webhook_token": "t", "api_keys": {}}))
        self.topic_arn = client("sns").create_topic(Name="lwb-bench-notifications")["TopicArn"]
        self.queue_url = client("sqs").create_queue(QueueName="lwb-bench-tasks")["QueueUrl"]
        s3 = client("s3")
        for bucket in ("lwb-bench-uploads", "lwb-bench-processed"):
            s3.create_bucket(Bucket=bucket)
        from PIL import Image
        buffer = io.BytesIO()
        Image.new("RGB", (640, 480), (10, 120, 200)).save(buffer, format="PNG")
        s3.put_object(Bucket="lwb-bench-uploads", Key="incoming/bench photo.png", Body=buffer.getvalue())
        client("events").create_event_bus(Name="lwb-bench-bus")

        import pg8000.native

        from common import db
        connection = pg8000.native.Connection(**db.connect_params(self.db_secret))
        db.migrate(connection)
        connection.close()

    def base_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        return {**keep, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": SESSION_TOKEN,
                "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "PYTHONPATH": str(HANDLERS_DIR),
                "PYTHONDONTWRITEBYTECODE": "", "WORKBOOK_ENV": "bench",
                "POWERTOOLS_METRICS_NAMESPACE": "LambdaWorkbook", "SAFETY_MARGIN_MS": "2000"}

    def scenarios(self, tracing: bool = False) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
        """Per function key: (environment, event of the first invocation).

        With ``tracing``, the five handlers that use the tracer run a second time as on Lambda with
        active tracing (LAMBDA_TASK_ROOT set, so the Powertools Tracer and the X-Ray SDK load; the
        segments go by UDP to a daemon address where nothing listens).
        """
        found = self._scenarios()
        if tracing:
            xray = {"LAMBDA_TASK_ROOT": str(HANDLERS_DIR), "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
                    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
                    "_X_AMZN_TRACE_ID": "Root=1-6745f0a1-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"}
            for key, (env, first_event) in list(found.items()):
                if key != "auth-handler":
                    found[f"{key} {XRAY_SUFFIX}"] = ({**env, **xray}, first_event)
        return found

    def _scenarios(self) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
        api_event = event("http_api_v2")
        auth_event = event("http_api_authorizer_v2")
        bearer = f"Bearer {hs256_token(int(time.time()))}"
        auth_event["identitySource"] = [bearer]
        auth_event["headers"]["authorization"] = bearer
        s3_event = event("s3_object_created")
        s3_event["Records"][0]["s3"]["bucket"]["name"] = "lwb-bench-uploads"
        s3_event["Records"][0]["s3"]["object"].update(key="incoming/bench+photo.png", size=None)
        return {
            "api-processor": ({"DB_SECRET_ARN": "lwb-bench/db", "CORS_ALLOW_ORIGIN": "https://app.example.com"},
                              api_event),
            "auth-handler": ({"JWT_SECRET_ARN": "lwb-bench/jwt", "JWT_ISSUER": "https://auth.local/",
                              "JWT_AUDIENCE": "lwb-api", "JWT_ALGORITHMS": "HS256", "JWT_LEEWAY_S": "30",
                              "JWT_MAX_TOKEN_BYTES": "8192", "SECRETS_MANAGER_TTL": "300",
                              "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.extension_port)}, auth_event),
            "data-processor": ({"DB_SECRET_ARN": "lwb-bench/db", "NOTIFICATIONS_TOPIC_ARN": self.topic_arn},
                               event("sqs_batch")),
            "file-processor": ({"UPLOADS_BUCKET": "lwb-bench-uploads", "PROCESSED_BUCKET": "lwb-bench-processed",
                                "EVENT_BUS_NAME": "lwb-bench-bus", "UPLOAD_PREFIX": "incoming/",
                                "MAX_OBJECT_BYTES": str(50 * 1024 * 1024)}, s3_event),
            "scheduler": ({"DB_SECRET_ARN": "lwb-bench/db", "TASK_QUEUE_URL": self.queue_url,
                           "NOTIFICATIONS_TOPIC_ARN": self.topic_arn}, event("eventbridge_scheduled")),
            "notification-handler": ({"API_KEYS_SECRET_ARN": "lwb-bench/api-keys"}, event("sqs_sns_envelope")),
        }

    def close(self) -> None:
        for server in (self.extension, self.webhook):
            server.shutdown()
            server.server_close()
        self.moto.stop()
        self.pg.cleanup()
        shutil.rmtree(self.pg_dir, ignore_errors=True)


# --- measurement -------------------------------------------------------------------------------

def _run_child(code: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.time()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"child failed ({result.returncode}): {result.stderr.strip().splitlines()[-3:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        raise RuntimeError(f"child printed no result: {result.stdout[-500:]} {result.stderr[-500:]}")
    return started, lines[-1][len(MARK):]


def measure_baseline(name: str, env: dict[str, str]) -> float:
    """Milliseconds from spawn to the end of the baseline's work."""
    started, payload = _run_child(BASELINES[name], env)
    return (float(payload) - started) * 1000


def measure_handler(key: str, env: dict[str, str], first_event: dict[str, Any], warm: int) -> dict[str, Any]:
    """INIT and cold path (ms from spawn) and warm invocation durations (ms) of one fresh interpreter."""
    function = key.split(" ")[0]
    child_env = {**env, "POWERTOOLS_SERVICE_NAME": function, "WORKBOOK_FUNCTION": function,
                 "BENCH_MODULE": function.replace("-", "_"), "BENCH_EVENT": json.dumps(first_event),
                 "BENCH_WARM": str(warm)}
    started, payload = _run_child(CHILD, child_env)
    result = json.loads(payload)
    return {"init_ms": (result["after_import"] - started) * 1000, "cold_ms": (result["after_first"] - started) * 1000,
            "warm_ms": result["warm_ms"], "first": result["first"]}


def _check_first_response(key: str, response: Any) -> str | None:
    """A short problem description when the first invocation did not do the real work."""
    key = key.split(" ")[0]
    if key == "api-processor" and response.get("statusCode") != 200:
        return f"HTTP {response.get('statusCode')}"
    if key == "auth-handler" and response.get("isAuthorized") is not True:
        return "denied"
    if key in ("data-processor", "notification-handler") and response.get("batchItemFailures"):
        return f"{len(response['batchItemFailures'])} record failure(s)"
    if key == "file-processor" and response["results"][0]["status"] != "processed":
        return str(response["results"][0])
    return None


def run(runs: int, warm: int, tracing: bool = False) -> dict[str, Any]:
    stack = LocalStack()
    try:
        base_env = stack.base_env()
        scenarios = stack.scenarios(tracing)
        samples: dict[str, dict[str, list[float]]] = {name: {"total_ms": []} for name in BASELINES}
        samples.update({key: {"init_ms": [], "cold_ms": [], "warm_ms": []} for key in scenarios})
        problems: dict[str, str] = {}
        order = list(BASELINES) + list(scenarios)
        rng = random.Random(3)
        for _ in range(runs):
            rng.shuffle(order)
            for name in order:
                if name in BASELINES:
                    samples[name]["total_ms"].append(measure_baseline(name, base_env))
                    continue
                function_env, first_event = scenarios[name]
                result = measure_handler(name, {**base_env, **function_env}, first_event, warm)
                samples[name]["init_ms"].append(result["init_ms"])
                samples[name]["cold_ms"].append(result["cold_ms"])
                samples[name]["warm_ms"].extend(result["warm_ms"])
                problem = _check_first_response(name, result["first"])
                if problem:
                    problems[name] = problem
        return {"samples": samples, "problems": problems, "runs": runs, "warm": warm}
    finally:
        stack.close()


def summarise(measured: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The markdown table and a JSON-able summary."""
    samples = measured["samples"]
    bare_ms = statistics.median(samples["bare"]["total_ms"])
    boto3_ms = statistics.median(samples["boto3"]["total_ms"])
    lines = [
        f"Runs per scenario: {measured['runs']} fresh interpreters; warm p50 over {measured['runs'] * measured['warm']} "
        f"warm invocations. Python {sys.version.split()[0]}, {os.cpu_count()} CPUs. Medians, ms from spawn.",
        "",
        f"Baselines: bare interpreter {bare_ms:.0f} ms; `import boto3; boto3.client(\"secretsmanager\")` {boto3_ms:.0f} ms "
        f"({boto3_ms - bare_ms:.0f} ms net of the bare interpreter).",
        "",
        "| function | INIT ms | cold path ms | warm p50 ms | target | ratio | ratio net of bare | meets |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    summary: dict[str, Any] = {"bare_ms": bare_ms, "boto3_ms": boto3_ms, "functions": {}}
    for key, values in samples.items():
        if key in BASELINES:
            continue
        init_ms = statistics.median(values["init_ms"])
        cold_ms = statistics.median(values["cold_ms"])
        warm_p50 = statistics.median(values["warm_ms"]) if values["warm_ms"] else float("nan")
        phase, limit = TARGETS.get(key.split(" ")[0], DEFAULT_TARGET)
        measured_ms = cold_ms if phase == "cold" else init_ms
        ratio = measured_ms / boto3_ms
        net_ratio = (measured_ms - bare_ms) / (boto3_ms - bare_ms)
        meets = ratio <= limit
        note = f" (first call: {measured['problems'][key]})" if key in measured["problems"] else ""
        lines.append(f"| {key}{note} | {init_ms:.0f} | {cold_ms:.0f} | {warm_p50:.1f} | {phase} <= {limit}x boto3 | "
                     f"{ratio:.2f} | {net_ratio:.2f} | {'yes' if meets else 'NO'} |")
        summary["functions"][key] = {"init_ms": init_ms, "cold_ms": cold_ms, "warm_p50_ms": warm_p50,
                                     "target": f"{phase} <= {limit}x boto3", "ratio": ratio, "net_ratio": net_ratio,
                                     "meets": meets, "problem": measured["problems"].get(key)}
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh interpreters per scenario (default 10)")
    parser.add_argument("--warm", type=int, default=20, help="warm invocations per interpreter (default 20)")
    parser.add_argument("--arch", default="x86_64", choices=["x86_64", "arm64"], help="layer architecture for sizes")
    parser.add_argument("--no-layer", action="store_true", help="do not build the layer (needs the package index)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--tracing", action="store_true",
                        help="also measure the handlers with X-Ray tracing active, as deployed (mode Active)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    table, summary = summarise(run(args.runs, args.warm, args.tracing))
    print("## Cold start\n")
    print(table)
    from infra import packaging
    print("\n## Deployment package sizes\n")
    print(packaging.report(args.arch, include_layer=not args.no_layer))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

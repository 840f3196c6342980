"""moto's server, with Lambda's Invoke API answered by the local sandbox (run as a script: moto's process).

moto's Step Functions executor (``moto/stepfunctions/parser``) calls the services of a task state
through boto3 at ``http://localhost:$MOTO_PORT`` (``parser/asl/utils/boto_client.py``): its
``lambda:invoke`` tasks reach this server's Lambda, which cannot run code without Docker. This
script runs moto's own WSGI application behind one route: ``POST /2015-03-31/functions/NAME/
invocations`` goes to the engine's Invoke API (the ``control`` port recorded in the environment's
``state.json``, read at each call, so an engine restarted on another port is followed), and
every other request reaches moto unchanged. The Step Functions executor then runs the real
handlers in the sandbox, with their REPORT lines, metrics and throttles.

It runs as a script with moto's interpreter (``python -P moto_router.py --owner=... --state-dir=DIR
-- -H HOST -p PORT``; ``-P`` keeps this folder off ``sys.path``, and no module beside it is named
like a standard one): it imports nothing from ``workbook``, so moto's start costs no more than before.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations$")
# The headers of Lambda's Invoke API that the engine reads (botocore sends them capitalised thus).
FORWARDED_HEADERS = ("Content-Type", "X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Client-Context")
# A step's invocation may run up to the function's timeout (15 minutes at most), plus a margin.
INVOKE_TIMEOUT_S = 960


#: The engine's control API wants its per-start token in this header (workbook.local.endpoints.TOKEN_HEADER).
TOKEN_HEADER = "X-Lwb-Control-Token"


def engine_port(state_dir: Path) -> int | None:
    """The engine's Invoke API port, from the environment's state file (None while it has none)."""
    return engine_address(state_dir)[0]


def engine_address(state_dir: Path) -> tuple[int | None, str]:
    """The engine's Invoke API port and control token, from the environment's (0600) state file."""
    try:
        recorded = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return None, ""
    engine = recorded.get("engine") or {}
    port = (engine.get("ports") or {}).get("control")
    return (int(port) if port else None), str(engine.get("control_token") or "")


def _service_error(message: str) -> tuple[int, dict[str, str], bytes]:
    """Lambda's own 5xx shape: a Step Functions task sees ``Lambda.ServiceException`` and retries."""
    body = json.dumps({"Type": "Service", "message": message}).encode()
    return 503, {"Content-Type": "application/json", "x-amzn-ErrorType": "ServiceException"}, body


def forward_invoke(state_dir: Path, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one Invoke request to the engine; return its status, headers and body."""
    port, token = engine_address(state_dir)
    if port is None:
        return _service_error("the local sandbox engine is not running")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=INVOKE_TIMEOUT_S)
    try:
        sent = {k: v for k, v in headers.items() if v is not None}
        sent[TOKEN_HEADER] = token
        connection.request("POST", path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return response.status, {k: v for k, v in response.getheaders() if k.lower() not in
                                 ("content-length", "connection", "transfer-encoding", "date", "server")}, data
    except OSError as exc:
        return _service_error(f"the local sandbox engine did not answer: {exc}")
    finally:
        connection.close()


class LambdaInvokeRouter:
    """WSGI middleware: Lambda Invoke to the sandbox engine, everything else to moto's application."""

    def __init__(self, moto_app: Any, state_dir: Path) -> None:
        self.moto_app, self.state_dir = moto_app, state_dir
        self.debug = False

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not INVOKE_PATH.match(path):
            return self.moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {name: environ.get("HTTP_" + name.upper().replace("-", "_")) for name in FORWARDED_HEADERS}
        headers["Content-Type"] = environ.get("CONTENT_TYPE") or "application/json"
        status, response_headers, data = forward_invoke(self.state_dir, path, headers, body)
        if not any(name.lower() == "x-amzn-requestid" for name in response_headers):
            # Lambda answers every request, errors too, with its request id; botocore reads it into
            # ResponseMetadata, and moto's executor reads it from there to build a task's error cause.
            response_headers["x-amzn-RequestId"] = str(uuid.uuid4())
        reason = http.client.responses.get(status, "")
        start_response(f"{status} {reason}", [*response_headers.items(), ("Content-Length", str(len(data)))])
        return [data]


def faster_sqs() -> None:
    """Take two costs out of moto's SQS that grow with the queue, without changing an answer.

    - ``receive_message`` checks each message's retention through ``get_queue_attributes``, which
      computes every attribute of the queue three times, each a scan of all its messages: a
      receive on a queue of n messages cost O(n^2) clock readings. The retention period is read
      from the queue itself here (the same value), so a receive is O(n) again.
    - Each such reading built two datetimes (``unix_time()`` = now - the epoch, in seconds): the
      clock is read from ``time.time()`` instead, the same number to the microsecond.
    With 2,000 messages on the task queue the local environment processed about 7 messages a
    second, moto's process busy in those scans.
    """
    from moto.core import utils  # noqa: PLC0415 - moto is imported by main() before this runs
    from moto.sqs import models  # noqa: PLC0415 - as above

    def unix_time(dt=None) -> float:
        return time.time() if dt is None else utils.unix_time(dt)

    def unix_time_millis(dt=None) -> float:
        return time.time() * 1000.0 if dt is None else utils.unix_time_millis(dt)

    def retained(self, queue_name: str, message) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > unix_time()

    models.unix_time, models.unix_time_millis = unix_time, unix_time_millis
    models.SQSBackend.is_message_valid_based_on_retention_period = retained


def main(argv: list[str]) -> None:
    """``--owner=TOKEN --state-dir=DIR -- -H HOST -p PORT``: serve moto with the Invoke route."""
    ours = dict(arg.removeprefix("--").split("=", 1) for arg in argv[:argv.index("--")] if "=" in arg)
    moto_args = argv[argv.index("--") + 1:]
    host, port = moto_args[moto_args.index("-H") + 1], int(moto_args[moto_args.index("-p") + 1])
    # The executor's boto3 clients call localhost:$MOTO_PORT: this very server.
    os.environ["MOTO_PORT"] = str(port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))
    faster_sqs()
    app = LambdaInvokeRouter(DomainDispatcherApplication(create_backend_app), Path(ours["state-dir"]))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])

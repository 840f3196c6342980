"""The sandbox's Runtime API: Lambda's protocol on loopback, and only the invocation in progress may be answered."""
from __future__ import annotations

import http.client
import json
import threading

from workbook.local.sandbox.runtime_api import PREFIX, RuntimeApi


def _request(api: RuntimeApi, method: str, path: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    host, port = api.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_next_carries_lambdas_headers_and_only_the_current_request_may_answer():
    api = RuntimeApi()
    try:
        # GIVEN a runtime waiting for work, and an invocation delivered to it
        got = {}
        waiter = threading.Thread(target=lambda: got.update(next=_request(api, "GET", f"{PREFIX}/invocation/next")))
        waiter.start()
        api.deliver("req-1", {"a": 1}, 1_900_000_000_000, "arn:aws:lambda:us-east-1:1:function:f", "Root=1-x",
                    client_context={"custom": {"k": "v"}}, identity={"cognitoIdentityId": "id"})
        waiter.join(timeout=10)
        status, headers, body = got["next"]
        assert status == 200 and json.loads(body) == {"a": 1}
        assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
        assert headers["Lambda-Runtime-Deadline-Ms"] == "1900000000000"
        assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:f")
        assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-x"
        assert json.loads(headers["Lambda-Runtime-Client-Context"]) == {"custom": {"k": "v"}}
        assert json.loads(headers["Lambda-Runtime-Cognito-Identity"]) == {"cognitoIdentityId": "id"}
        assert api.take().kind == "next"
        # WHEN a stale request id answers, THEN it is refused and nothing is posted
        status, _, body = _request(api, "POST", f"{PREFIX}/invocation/req-0/response", b'"old"')
        assert status == 400 and json.loads(body)["errorType"] == "InvalidRequestID"
        assert api.take() is None
        # WHEN the current one answers, THEN it is taken once; a second answer is refused
        assert _request(api, "POST", f"{PREFIX}/invocation/req-1/response", b'"new"')[0] == 202
        posted = api.take()
        assert posted.kind == "response" and posted.body == b'"new"'
        assert _request(api, "POST", f"{PREFIX}/invocation/req-1/error", b"{}")[0] == 400
        assert _request(api, "POST", f"{PREFIX}/nowhere")[0] == 404
    finally:
        api.close()

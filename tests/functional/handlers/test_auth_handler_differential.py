"""auth-handler against PyJWT, case by case, through ``handler(event, context)`` with real events.

The same cases as ``tests/unit/handlers/test_jwt_differential.py`` (``tests/functional/jwt_cases.py``),
each put in an HTTP API authorizer v2 event (``identitySource`` and the ``authorization`` header)
and given to the handler, imported once per configuration as a fresh execution environment, with
its JWT secret served by the Parameters and Secrets extension emulator and the verifier's clock
fixed at ``jwt_cases.NOW``. The handler must never raise (the API would answer 500), must answer
a simple response, must never accept what PyJWT refuses, and must never log the token.
"""
from __future__ import annotations

import json

import jwt_cases
import pytest
from handler_kit import ExtensionEmulator, LambdaContext, LogCapture, forget_handler_modules, fresh_handler, load_event
from jwt_cases import CONFIGS, Case, pyjwt_accepts

CASES = jwt_cases.build_cases()


def _secret_id(config_name: str) -> str:
    return f"lwb-test/jwt-{config_name}"


@pytest.fixture(scope="module")
def handlers():
    """One freshly imported auth handler per configuration, all sharing one extension emulator."""
    secrets = {_secret_id(name): json.dumps({"hs256_key": config.hs256_key}) for name, config in CONFIGS.items()}
    with ExtensionEmulator(secrets) as extension, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AWS_SESSION_TOKEN", extension.session_token)
        modules = {}
        for name, config in CONFIGS.items():
            module = fresh_handler(
                "auth_handler", monkeypatch, JWT_SECRET_ARN=_secret_id(name), JWT_ALGORITHMS=",".join(config.algorithms),
                JWT_PUBLIC_KEY=config.public_key_pem, JWT_ISSUER=jwt_cases.ISSUER, JWT_AUDIENCE=jwt_cases.AUDIENCE,
                JWT_LEEWAY_S=str(jwt_cases.LEEWAY_S), JWT_MAX_TOKEN_BYTES=str(jwt_cases.MAX_TOKEN_BYTES),
                PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(extension.port))
            monkeypatch.setattr(module.VERIFIER, "clock", lambda: jwt_cases.NOW)
            modules[name] = module
        yield modules
    forget_handler_modules()


def authorizer_event(authorization: str) -> dict:
    """The HTTP API authorizer v2 fixture event carrying ``authorization``."""
    event = load_event("http_api_authorizer_v2")
    event["identitySource"] = [authorization]
    event["headers"]["authorization"] = authorization
    return event


def _secret_parts(authorization: str) -> list[str]:
    """Substrings of the token that must never reach a log line (long enough not to match by chance)."""
    compact = authorization.strip().rpartition(" ")[2]
    return [part for part in (compact, *compact.split(".")) if len(part) >= 24]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_handler_agrees_with_pyjwt(case: Case, handlers):
    # GIVEN one crafted Authorization value in a real authorizer event, and PyJWT's decision on it
    expected = pyjwt_accepts(case)
    module = handlers[case.config]
    logs = LogCapture(module)
    # WHEN the handler runs (an exception escaping it fails the test: the API would answer 500)
    response = module.handler(authorizer_event(case.authorization), LambdaContext())
    # THEN it answers a simple response, never logs the token, and agrees with PyJWT as the verifier must
    assert isinstance(response, dict) and response.get("isAuthorized") in (True, False), response
    if response["isAuthorized"] is False:
        assert response == {"isAuthorized": False}
    decisions = [record for record in logs.records() if record.get("message") in ("token accepted", "token rejected")]
    assert decisions and decisions[-1]["correlation_id"], f"{case.id}: no decision was logged"
    for part in _secret_parts(case.authorization):
        assert part not in logs.text, f"{case.id}: the token reached the logs"
    jwt_cases.assert_agrees(case, accepted=response["isAuthorized"], pyjwt_accepted=expected)

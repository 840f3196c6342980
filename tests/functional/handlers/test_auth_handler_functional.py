"""auth-handler: HTTP API Lambda authorizer (payload 2.0, simple responses) with JWT verification."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from handler_kit import HANDLERS_DIR, ExtensionEmulator, LambdaContext, LogCapture, function_env

HS256_KEY = "test-hs256-key-0123456789abcdef0123456789abcdef"
ISSUER, AUDIENCE = "https://auth.local/", "lwb-api"


@pytest.fixture(scope="module")
def rsa_keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public_pem


@pytest.fixture
def extension(monkeypatch):
    with ExtensionEmulator({"lwb-test/jwt": json.dumps({"hs256_key": HS256_KEY})}) as emulator:
        monkeypatch.setenv("AWS_SESSION_TOKEN", emulator.session_token)
        yield emulator


@pytest.fixture
def auth_factory(handler_factory, extension):
    def build(**env):
        return handler_factory("auth_handler", PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(extension.port), **env)
    return build


@pytest.fixture
def auth(auth_factory):
    return auth_factory()


@pytest.fixture
def token_factory():
    def build(key=HS256_KEY, algorithm="HS256", headers=None, **claims):
        now = int(time.time())
        body = {"sub": "user-123", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300,
                "scope": "items:read items:write", "email": "user@example.com"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key, algorithm=algorithm, headers=headers)
    return build


@pytest.fixture
def authorizer_event(event_factory):
    def build(authorization):
        event = event_factory("http_api_authorizer_v2")
        event["identitySource"] = [authorization] if authorization is not None else None
        event["headers"]["authorization"] = authorization
        if authorization is None:
            del event["headers"]["authorization"]
            del event["identitySource"]
        return event
    return build


def _segment(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_valid_hs256_token_is_allowed_with_principal_and_claims(auth, token_factory, authorizer_event):
    # GIVEN a token signed with the secret's HS256 key
    event = authorizer_event(f"Bearer {token_factory()}")
    # WHEN the authorizer runs
    response = auth.handler(event, LambdaContext())
    # THEN it allows the request and passes the principal and selected claims as context
    assert response["isAuthorized"] is True
    assert response["context"] == {"principal": "user-123", "scope": "items:read items:write",
                                   "email": "user@example.com"}


def test_secret_is_read_once_through_the_extension_and_cached(auth, token_factory, authorizer_event, extension):
    # GIVEN two requests in the same execution environment
    for _ in range(2):
        # WHEN each is authorized
        assert auth.handler(authorizer_event(f"Bearer {token_factory()}"), LambdaContext())["isAuthorized"]
    # THEN the secret was fetched once (TTL cache), with the session token header accepted
    assert extension.requests == ["lwb-test/jwt"]


NOW = object()  # marks a claim given as seconds relative to the moment the test runs


@pytest.mark.parametrize("claims, allowed", [
    ({"exp": (NOW, -10)}, True),                       # expired, but within the 30 s leeway
    ({"exp": (NOW, -120)}, False),                     # expired beyond the leeway
    ({"nbf": (NOW, 10)}, True),                        # not yet valid, within leeway
    ({"nbf": (NOW, 600)}, False),
    ({"iat": (NOW, 600)}, False),                      # issued in the future
    ({"iss": "https://evil.example/"}, False),
    ({"aud": "another-api"}, False),
    ({"aud": ["another-api", AUDIENCE]}, True),        # audience list containing ours
    ({"exp": None}, False),                            # exp is required
    ({"sub": None}, False),                            # no principal
    ({"exp": "tomorrow"}, False),                      # wrong type
])
def test_registered_claims_are_checked_with_leeway(auth, token_factory, authorizer_event, claims, allowed):
    # GIVEN a correctly signed token with one claim varied (times relative to now, taken when the test runs)
    now = int(time.time())
    resolved = {name: now + value[1] if isinstance(value, tuple) and value[0] is NOW else value
                for name, value in claims.items()}
    event = authorizer_event(f"Bearer {token_factory(**resolved)}")
    # WHEN it is authorized
    response = auth.handler(event, LambdaContext())
    # THEN the decision follows the claim checks
    assert response["isAuthorized"] is allowed


def test_alg_none_is_rejected(auth, authorizer_event):
    # GIVEN an unsigned token (alg none), in several spellings
    for alg in ("none", "None", "NONE"):
        token = f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment({'sub': 'x', 'iss': ISSUER, 'aud': AUDIENCE, 'exp': 9999999999})}."
        # WHEN it is authorized, THEN it is denied
        assert auth.handler(authorizer_event(f"Bearer {token}"), LambdaContext()) == {"isAuthorized": False}
        token_with_sig = token + "c2ln"
        assert auth.handler(authorizer_event(f"Bearer {token_with_sig}"), LambdaContext()) == {"isAuthorized": False}


def test_algorithm_confusion_is_rejected(auth_factory, rsa_keys, token_factory, authorizer_event):
    # GIVEN an authorizer configured for RS256 only, and a token "signed" with HS256 using the public key as secret
    _, public_pem = rsa_keys
    auth = auth_factory(JWT_ALGORITHMS="RS256", JWT_PUBLIC_KEY=public_pem)
    header = _segment({"alg": "HS256", "typ": "JWT"})
    now = int(time.time())
    payload = _segment({"sub": "attacker", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300})
    import hashlib
    import hmac
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()).decode().rstrip("=")
    # WHEN it is authorized
    response = auth.handler(authorizer_event(f"Bearer {header}.{payload}.{signature}"), LambdaContext())
    # THEN it is denied
    assert response == {"isAuthorized": False}


def test_rs256_token_with_the_configured_public_key_is_allowed(auth_factory, rsa_keys, token_factory, authorizer_event):
    # GIVEN an authorizer accepting HS256 and RS256, and a token signed with the RSA private key
    private, public_pem = rsa_keys
    auth = auth_factory(JWT_ALGORITHMS="HS256,RS256", JWT_PUBLIC_KEY=public_pem)
    token = token_factory(key=private, algorithm="RS256")
    # WHEN it is authorized
    response = auth.handler(authorizer_event(f"Bearer {token}"), LambdaContext())
    # THEN it is allowed; and a token signed by another RSA key is not
    assert response["isAuthorized"] is True
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert auth.handler(authorizer_event(f"Bearer {token_factory(key=other, algorithm='RS256')}"),
                        LambdaContext())["isAuthorized"] is False


@pytest.mark.parametrize("authorization", [
    None,                                                   # missing header
    "",                                                     # empty
    "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",                        # missing Bearer prefix
    "Basic dXNlcjpwYXNz",                                   # another scheme
    "Bearer ",                                              # bearer without token
    "Bearer not-a-jwt",                                     # malformed: one segment
    "Bearer a.b",                                           # malformed: two segments
    "Bearer " + _segment(b"{not json") + "." + _segment({"sub": "x"}) + ".c2ln",      # header not JSON
    "Bearer " + _segment([1, 2]) + "." + _segment({"sub": "x"}) + ".c2ln",            # header not an object
    "Bearer " + _segment({"typ": "JWT"}) + "." + _segment({"sub": "x"}) + ".c2ln",    # no alg
    "Bearer " + _segment(b"\xff\xfe\xfd") + "." + _segment({"sub": "x"}) + ".c2ln",   # non-UTF-8 header bytes
    "Bearer " + _segment({"alg": "HS512"}) + "." + _segment({"sub": "x"}) + ".c2ln",  # algorithm not allowed
    "Bearer " + _segment({"alg": "HS256", "crit": ["exp"]}) + "." + _segment({"sub": "x"}) + ".c2ln",
    "Bearer " + "a" * 9000 + ".b.c",                        # oversized
    "Bearer eyJ\u00e9.e30.c2ln",                            # non-ASCII characters
])
def test_bad_authorization_values_are_denied(auth, authorizer_event, authorization):
    # GIVEN a request with a bad or missing Authorization value
    event = authorizer_event(authorization)
    logs = LogCapture(auth)
    # WHEN it is authorized
    response = auth.handler(event, LambdaContext())
    # THEN it is denied, with a structured log line giving the reason
    assert response == {"isAuthorized": False}
    rejected = logs.records("token rejected")
    assert rejected and rejected[0]["reason"] and rejected[0]["correlation_id"]


def test_bad_signature_is_denied(auth, token_factory, authorizer_event):
    # GIVEN a token signed with another key, and one whose payload was altered after signing
    forged = token_factory(key="some-other-key-0123456789abcdef0123")
    header, payload, signature = token_factory().split(".")
    tampered = ".".join([header, _segment({"sub": "admin", "iss": ISSUER, "aud": AUDIENCE, "exp": 9999999999}), signature])
    # WHEN they are authorized, THEN both are denied
    for token in (forged, tampered):
        assert auth.handler(authorizer_event(f"Bearer {token}"), LambdaContext()) == {"isAuthorized": False}


@pytest.mark.parametrize("event", [{}, [], "Bearer x", None, {"Records": [{"eventSource": "aws:sqs"}]},
                                   {"headers": "authorization"}, {"identitySource": [123]}])
def test_wrong_or_empty_events_are_denied(auth, event):
    # GIVEN an event that is not an authorizer request (or is empty / of the wrong types)
    # WHEN it reaches the authorizer, THEN it is denied without an exception
    assert auth.handler(event, LambdaContext()) == {"isAuthorized": False}


def test_the_token_is_never_logged(auth, token_factory, authorizer_event):
    # GIVEN a valid token and an invalid one
    good, bad = token_factory(), token_factory(aud="nope")
    logs = LogCapture(auth)
    # WHEN both are authorized
    auth.handler(authorizer_event(f"Bearer {good}"), LambdaContext())
    auth.handler(authorizer_event(f"Bearer {bad}"), LambdaContext())
    # THEN no log output contains either token or its signature
    output = logs.text
    assert "token accepted" in output and "token rejected" in output
    for token in (good, bad):
        assert token not in output and token.split(".")[2] not in output


def test_unreachable_secret_denies_with_an_error_log(handler_factory, token_factory, authorizer_event):
    # GIVEN no extension listening on the configured port
    auth = handler_factory("auth_handler", PARAMETERS_SECRETS_EXTENSION_HTTP_PORT="1")
    logs = LogCapture(auth)
    # WHEN a request is authorized
    response = auth.handler(authorizer_event(f"Bearer {token_factory()}"), LambdaContext())
    # THEN it is denied and the failure is logged as an error
    assert response == {"isAuthorized": False}
    assert logs.records("cannot verify tokens")[0]["level"] == "ERROR"


def test_denies_when_too_little_time_is_left(auth, token_factory, authorizer_event):
    # GIVEN almost no time left in the invocation
    context = LambdaContext(remaining_ms=100)
    # WHEN a valid token arrives, THEN the authorizer denies rather than risk a timeout
    assert auth.handler(authorizer_event(f"Bearer {token_factory()}"), context) == {"isAuthorized": False}


def test_module_never_loads_boto3():
    # GIVEN a fresh interpreter with the auth handler's environment
    env = {**function_env("auth-handler"), "PATH": "/usr/bin:/bin"}
    code = ("import sys, auth_handler; "
            "print(sorted(m for m in ('boto3', 'botocore.session', 'botocore.client', 'aws_xray_sdk') if m in sys.modules))")
    # WHEN it imports the handler
    result = subprocess.run([sys.executable, "-c", code], cwd=HANDLERS_DIR, env=env, capture_output=True, text=True,
                            check=True)
    # THEN neither boto3 nor a botocore client nor the X-Ray SDK was loaded
    assert result.stdout.strip() == "[]"


def test_a_rotated_key_is_picked_up_without_waiting_for_the_ttl(auth, token_factory, authorizer_event, extension):
    # GIVEN a warm authorizer whose cached key is older than the refresh age, and a rotated secret
    assert auth.handler(authorizer_event(f"Bearer {token_factory()}"), LambdaContext())["isAuthorized"]
    new_key = "rotated-hs256-key-0123456789abcdef0123456789"
    extension.secrets["lwb-test/jwt"] = json.dumps({"hs256_key": new_key})
    clock = auth.SECRETS._clock
    auth.SECRETS._clock = lambda: clock() + auth.KEY_REFRESH_MIN_AGE_S + 1
    # WHEN a token signed with the new key arrives
    response = auth.handler(authorizer_event(f"Bearer {token_factory(key=new_key)}"), LambdaContext())
    # THEN the key is re-read once and the token is accepted; a forged token re-reads nothing more
    assert response["isAuthorized"] is True and extension.requests == ["lwb-test/jwt", "lwb-test/jwt"]
    assert auth.handler(authorizer_event(f"Bearer {token_factory(key='forged-key-0123456789abcdef012345')}"),
                        LambdaContext())["isAuthorized"] is False
    assert len(extension.requests) == 2


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # PyJWT signs the test tokens
@pytest.mark.parametrize("secret, problem", [
    ({"hs256_key": "sixteen-byte-key"}, "16 bytes"),
    ({"hs256_key": ""}, "no hs256_key"),
    ({"other": "x" * 64}, "no hs256_key"),
])
def test_an_unusable_hs256_key_denies_every_token_and_logs_one_error(auth, token_factory, authorizer_event, extension,
                                                                       secret, problem):
    # GIVEN a JWT secret whose HS256 key is too short (or missing), and tokens correctly signed with it
    extension.secrets["lwb-test/jwt"] = json.dumps(secret)
    key = secret.get("hs256_key") or "unused"
    logs = LogCapture(auth)
    # WHEN three requests arrive in the same execution environment
    responses = [auth.handler(authorizer_event(f"Bearer {token_factory(key=key)}"), LambdaContext())
                 for _ in range(3)]
    # THEN every one is denied (403, not a 500), each with the reason, and one error names the secret and the fix
    assert responses == [{"isAuthorized": False}] * 3
    assert [r["reason"] for r in logs.records("token rejected")] == ["key_misconfigured"] * 3
    errors = [r for r in logs.records() if r["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["secret"] == "lwb-test/jwt" and problem in errors[0]["problem"]
    assert "32 bytes" in errors[0]["fix"] and "token_urlsafe" in errors[0]["fix"]
    # AND the key itself is never logged
    if secret.get("hs256_key"):
        assert secret["hs256_key"] not in logs.text


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_fixed_hs256_key_is_picked_up_after_the_refresh_age(auth, token_factory, authorizer_event, extension):
    # GIVEN an authorizer that read a 16-byte key, and then the secret fixed with a long key
    extension.secrets["lwb-test/jwt"] = json.dumps({"hs256_key": "sixteen-byte-key"})
    assert auth.handler(authorizer_event(f"Bearer {token_factory()}"), LambdaContext()) == {"isAuthorized": False}
    extension.secrets["lwb-test/jwt"] = json.dumps({"hs256_key": HS256_KEY})
    clock = auth.SECRETS._clock
    auth.SECRETS._clock = lambda: clock() + auth.KEY_REFRESH_MIN_AGE_S + 1
    # WHEN the next token arrives, THEN the key is re-read once and the token accepted
    assert auth.handler(authorizer_event(f"Bearer {token_factory()}"), LambdaContext())["isAuthorized"] is True
    assert extension.requests == ["lwb-test/jwt", "lwb-test/jwt"]


def test_an_unexpected_error_denies_and_logs_only_its_type(auth, token_factory, authorizer_event, monkeypatch):
    # GIVEN a verifier with a bug that raises, quoting the token, for a valid token
    token = token_factory()

    def broken(value):
        raise RuntimeError(f"bug while reading {value}")

    monkeypatch.setattr(auth.VERIFIER, "verify", broken)
    logs = LogCapture(auth)
    # WHEN it is authorized
    response = auth.handler(authorizer_event(f"Bearer {token}"), LambdaContext())
    # THEN the handler denies instead of raising, and logs an error with the exception type, never the token
    assert response == {"isAuthorized": False}
    [error] = [r for r in logs.records() if r["level"] == "ERROR"]
    assert error["reason"] == "malformed_token" and error["error_type"] == "RuntimeError"
    assert token not in logs.text and "bug while reading" not in logs.text


def test_a_header_nested_1000_deep_is_denied_like_garbage(auth, authorizer_event):
    # GIVEN an unsigned token whose header is JSON nested 1,000 deep (2 KB; no key needed to send it)
    header = _segment(b'{"alg":"HS256","x":' + b"[" * 1000 + b"]" * 1000 + b"}")
    logs = LogCapture(auth)
    # WHEN it is authorized
    response = auth.handler(authorizer_event(f"Bearer {header}.e30.c2ln"), LambdaContext())
    # THEN it is denied as malformed, as garbage is, with no error logged (no 500, nothing for the alarm)
    assert response == {"isAuthorized": False}
    assert [r["reason"] for r in logs.records("token rejected")] == ["malformed_token"]
    assert not [r for r in logs.records() if r["level"] == "ERROR"]


def test_non_finite_claims_are_left_out_of_the_context(auth, authorizer_event):
    # GIVEN a correctly signed token whose scope is 1e400 (JSON that decodes to infinity)
    import hashlib
    import hmac

    now = int(time.time())
    body = json.dumps({"sub": "user-123", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "email": "a@b.c"})
    payload = body[:-1].encode() + b', "scope": 1e400}'
    signing_input = f"{_segment({'alg': 'HS256'})}.{_segment(payload)}"
    signature = _segment(hmac.new(HS256_KEY.encode(), signing_input.encode(), hashlib.sha256).digest())
    # WHEN it is authorized
    response = auth.handler(authorizer_event(f"Bearer {signing_input}.{signature}"), LambdaContext())
    # THEN it is allowed, and the context carries only values the API can serialise
    assert response == {"isAuthorized": True, "context": {"principal": "user-123", "email": "a@b.c"}}

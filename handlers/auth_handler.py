"""auth-handler: the HTTP API's Lambda authorizer (payload 2.0, simple responses), verifying JWTs.

It never loads boto3: the HS256 key is read through the Parameters and Secrets Lambda Extension's
local HTTP endpoint (stdlib urllib), cached for SECRETS_MANAGER_TTL seconds. Every failure,
including a bad event or an unreachable secret, is a deny (``isAuthorized: false``) with a
structured log line naming the reason; the token itself is never logged. ``handler`` raises for
no event and no token: an exception nobody anticipated is still a deny (reason
``malformed_token``), logged as an error with its type only, since an authorizer that raises
answers HTTP 500 and counts against the function's error alarm.

An HS256 key shorter than 32 bytes (or missing) in the JWT secret denies every token with reason
``key_misconfigured``; the first such denial in an execution environment logs an error that names
the secret and the fix. INIT does not read the secret, so it never fails for this: the API answers
403, not 500, and a corrected secret is picked up within ``KEY_REFRESH_MIN_AGE_S``.
"""
from __future__ import annotations

from typing import Any

from common import budgets, config, runtime
from common.errors import HandlerError
from common.logger import correlation_paths, logger
from common.metrics import count, metrics
from common.secrets import ExtensionSource, SecretsCache
from common.tokens import MIN_HS256_KEY_BYTES, JwtVerifier, Reason, TokenRejected, bearer_token

CONFIG = config.load("auth-handler")
SECRETS = SecretsCache(ExtensionSource(port=CONFIG.extension_port, timeout_s=budgets.SECRETS_EXTENSION_TIMEOUT_S),
                       ttl_s=CONFIG.secrets_ttl_s)

#: A signature failure re-reads the HS256 key when the cached copy is older than this, so a
#: rotated key is picked up at once instead of after SECRETS_MANAGER_TTL (at most one re-read
#: per this many seconds, whatever the traffic of forged tokens).
KEY_REFRESH_MIN_AGE_S = 30.0

#: Claims passed to the API as authorizer context, besides the principal (``sub``).
CONTEXT_CLAIMS = ("scope", "email", "tenant", "roles", "client_id")


#: The key problem last logged in this execution environment (logged once, not on every request).
_key_problem_logged: str | None = None


def _hs256_key() -> bytes:
    """The HS256 key from the JWT secret, refused (deny, error logged once) when missing or too short."""
    global _key_problem_logged
    value = SECRETS.get_json(CONFIG.jwt_secret_arn).get("hs256_key")
    key = value.encode("utf-8") if isinstance(value, str) else b""
    if not key:
        problem = "has no hs256_key string"
    elif len(key) < MIN_HS256_KEY_BYTES:
        problem = f"has an hs256_key of {len(key)} bytes, under the {MIN_HS256_KEY_BYTES} HS256 needs"
    else:
        _key_problem_logged = None
        return key
    if problem != _key_problem_logged:
        _key_problem_logged = problem
        logger.error("cannot verify tokens: the JWT secret's HS256 key is unusable; denying every token", extra={
            "secret": CONFIG.jwt_secret_arn.rsplit(":", 1)[-1], "problem": problem,
            "fix": f"store a random hs256_key of at least {MIN_HS256_KEY_BYTES} bytes in that secret, e.g. "
                   "python -c 'import secrets; print(secrets.token_urlsafe(48))'; it is picked up within "
                   f"{KEY_REFRESH_MIN_AGE_S:.0f} s"})
    raise TokenRejected(Reason.KEY_MISCONFIGURED, f"the JWT secret {problem}")


VERIFIER = JwtVerifier(
    algorithms=CONFIG.jwt_algorithms,
    issuer=CONFIG.jwt_issuer,
    audience=CONFIG.jwt_audience,
    leeway_s=CONFIG.jwt_leeway_s,
    max_token_bytes=CONFIG.jwt_max_token_bytes,
    hs256_key=_hs256_key if "HS256" in CONFIG.jwt_algorithms else None,
    rs256_public_key_pem=CONFIG.jwt_public_key,
)

DENY: dict[str, Any] = {"isAuthorized": False}


def authorization_header(event: Any) -> Any:
    """The Authorization value of an HTTP API authorizer event (identity source first, then headers)."""
    if not isinstance(event, dict):
        return None
    sources = event.get("identitySource")
    if isinstance(sources, list) and sources and isinstance(sources[0], str):
        return sources[0]
    headers = event.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "authorization":
                return value
    return None


def _context_value(value: Any) -> Any:
    if isinstance(value, float) and not abs(value) < float("inf"):
        return None  # NaN or infinity (1e400 decodes to inf): not JSON, so not for the API's context
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        return " ".join(str(item) for item in value if isinstance(item, (str, int)))
    return None


def authorize(event: Any) -> dict[str, Any]:
    """The simple response for one authorizer event; never raises."""
    try:
        return _decide(event)
    except Exception as error:  # noqa: BLE001 - last resort: a bug must deny, never raise (HTTP 500)
        # The type only: a message or a traceback could quote the token.
        logger.error("token rejected: unexpected error while verifying", extra={
            "reason": Reason.MALFORMED.value, "error_type": type(error).__name__})
        count("TokenRejected")
        count("AuthorizerUnexpectedError")
        return DENY


def _decide(event: Any) -> dict[str, Any]:
    try:
        token = bearer_token(authorization_header(event), CONFIG.jwt_max_token_bytes)
        claims = _verify(token)
    except TokenRejected as rejected:
        logger.info("token rejected", extra={"reason": rejected.reason.value, "route": _route(event)})
        count("TokenRejected")
        return DENY
    except HandlerError as error:  # the secret is unreachable: deny, loudly
        logger.error("cannot verify tokens", extra={"error": error.code, "detail": error.message})
        count("AuthorizerDependencyFailure")
        return DENY
    context: dict[str, Any] = {"principal": claims["sub"]}
    for name in CONTEXT_CLAIMS:
        value = _context_value(claims.get(name))
        if value is not None:
            context[name] = value
    logger.info("token accepted", extra={"principal": claims["sub"], "route": _route(event)})
    count("TokenAccepted")
    return {"isAuthorized": True, "context": context}


#: Rejections a fresher copy of the key may cure (a rotated key; a misconfigured key since fixed).
_KEY_REASONS = (Reason.BAD_SIGNATURE, Reason.KEY_MISCONFIGURED)


def _verify(token: str) -> dict[str, Any]:
    """Verify the token; on a bad signature or an unusable key, retry once with a fresh key if ours may be stale."""
    try:
        return VERIFIER.verify(token)
    except TokenRejected as rejected:
        age_s = SECRETS.age_s(CONFIG.jwt_secret_arn)
        if rejected.reason not in _KEY_REASONS or age_s is None or age_s < KEY_REFRESH_MIN_AGE_S:
            raise
        SECRETS.invalidate(CONFIG.jwt_secret_arn)
        logger.info("token refused with a cached key; re-reading the key once",
                    extra={"reason": rejected.reason.value, "key_age_s": round(age_s)})
        return VERIFIER.verify(token)


def _route(event: Any) -> Any:
    return event.get("routeKey") or event.get("routeArn") if isinstance(event, dict) else None


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: allow or deny one HTTP API request."""
    if not runtime.has_time(context, min(CONFIG.safety_margin_ms, 500)):
        logger.warning("denying: too little time left to verify", extra={"remaining_ms": runtime.remaining_ms(context)})
        return DENY
    return authorize(event)

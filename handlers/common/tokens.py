"""JWT verification for the auth handler: HS256 and RS256, strict parsing, registered claims.

Written against RFC 7519/7515 with the stdlib (hmac, hashlib, base64, json), plus
``cryptography`` for RS256 loaded only when RS256 is configured. PyJWT would do the same work but
imports ``cryptography``'s X.509 stack on every cold start (about 70 ms), and the authorizer sits
on every request's path; ``tests/unit/handlers/test_tokens.py`` cross-checks this module against
PyJWT-signed tokens.

Defences, each tested:
* the token's size is capped before any decoding;
* exactly three base64url segments; header and payload must be JSON objects;
* ``alg`` must be one of the configured algorithms: ``none`` (any case) is never accepted;
* each algorithm has its own key (HS256: the secret; RS256: the configured public key), so an
  HS256 token "signed" with the public key (algorithm confusion) fails;
* ``crit`` headers are refused (we implement no extensions);
* ``exp`` is required; ``exp``, ``nbf`` and ``iat`` allow ``leeway_s`` of clock skew;
  ``iss`` must match; ``aud`` (string or list) must contain the configured audience.
"""
from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import re
import time
from typing import Any, Callable

from common.errors import Unauthorized

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class Reason(str, enum.Enum):
    """Why a token was rejected (logged and counted; never the token itself)."""

    MISSING = "missing_token"
    NOT_BEARER = "missing_bearer_prefix"
    OVERSIZED = "oversized_token"
    MALFORMED = "malformed_token"
    ALG_NONE = "alg_none"
    ALG_NOT_ALLOWED = "algorithm_not_allowed"
    CRITICAL_HEADER = "unsupported_critical_header"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    BAD_CLAIM = "bad_claim"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    NO_SUBJECT = "no_subject"


class TokenRejected(Unauthorized):
    """The bearer token failed verification; ``reason`` says which check."""

    code = "token_rejected"

    def __init__(self, reason: Reason, message: str = ""):
        super().__init__(message or reason.value, reason=reason.value)
        self.reason = reason


def bearer_token(authorization: Any, max_bytes: int) -> str:
    """The token from an ``Authorization: Bearer <token>`` value, with the size checked first."""
    if not isinstance(authorization, str) or not authorization.strip():
        raise TokenRejected(Reason.MISSING)
    if len(authorization) > max_bytes + 7:
        raise TokenRejected(Reason.OVERSIZED)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected(Reason.NOT_BEARER)
    return token.strip()


def _b64decode(segment: str) -> bytes:
    if len(segment) % 4 == 1:
        raise TokenRejected(Reason.MALFORMED, "bad base64url length")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected(Reason.MALFORMED, "bad base64url") from None


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TokenRejected(Reason.MALFORMED, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(Reason.MALFORMED, f"{what} is not a JSON object")
    return value


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenRejected(Reason.BAD_CLAIM, f"{name} is not a NumericDate")
    return float(value)


class JwtVerifier:
    """Verifies compact JWS tokens against the configured algorithms, keys and claims."""

    def __init__(self, *, algorithms: tuple[str, ...], issuer: str, audience: str, leeway_s: int = 30,
                 max_token_bytes: int = 8192, hs256_key: Callable[[], bytes] | None = None,
                 rs256_public_key_pem: str = "", clock: Callable[[], float] = time.time):
        self.algorithms = tuple(algorithms)
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.max_token_bytes = max_token_bytes
        self._hs256_key = hs256_key
        self._clock = clock
        self._rs256_key = None
        if "RS256" in self.algorithms:
            # Loaded at INIT, and only when RS256 is configured.
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            key = load_pem_public_key(rs256_public_key_pem.encode("ascii"))
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("JWT_PUBLIC_KEY is not an RSA public key")
            self._rs256_key = key

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims when every check passes; else raise :class:`TokenRejected`."""
        if len(token) > self.max_token_bytes:
            raise TokenRejected(Reason.OVERSIZED)
        if not _TOKEN_SHAPE.match(token):
            raise TokenRejected(Reason.MALFORMED, "not three base64url segments")
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = _json_object(header_b64, "header")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            raise TokenRejected(Reason.MALFORMED, "header has no alg")
        if algorithm.lower() == "none":
            raise TokenRejected(Reason.ALG_NONE)
        if algorithm not in self.algorithms:
            raise TokenRejected(Reason.ALG_NOT_ALLOWED, f"alg {algorithm[:16]!r} not allowed")
        if "crit" in header:
            raise TokenRejected(Reason.CRITICAL_HEADER)
        signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
        signature = _b64decode(signature_b64)
        if not self._signature_ok(algorithm, signing_input, signature):
            raise TokenRejected(Reason.BAD_SIGNATURE)
        claims = _json_object(payload_b64, "payload")
        self._check_claims(claims)
        return claims

    def _signature_ok(self, algorithm: str, signing_input: bytes, signature: bytes) -> bool:
        if algorithm == "HS256":
            if self._hs256_key is None:
                return False
            expected = hmac.new(self._hs256_key(), signing_input, hashlib.sha256).digest()
            return hmac.compare_digest(expected, signature)
        if algorithm == "RS256" and self._rs256_key is not None:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            try:
                self._rs256_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                return False
            return True
        return False

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        expires_at = _number(claims, "exp")
        if expires_at is None:
            raise TokenRejected(Reason.BAD_CLAIM, "exp is required")
        if now > expires_at + self.leeway_s:
            raise TokenRejected(Reason.EXPIRED)
        not_before = _number(claims, "nbf")
        if not_before is not None and now + self.leeway_s < not_before:
            raise TokenRejected(Reason.NOT_YET_VALID)
        issued_at = _number(claims, "iat")
        if issued_at is not None and issued_at > now + self.leeway_s:
            raise TokenRejected(Reason.ISSUED_IN_FUTURE)
        if claims.get("iss") != self.issuer:
            raise TokenRejected(Reason.WRONG_ISSUER)
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.audience not in [a for a in audiences if isinstance(a, str)]:
            raise TokenRejected(Reason.WRONG_AUDIENCE)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise TokenRejected(Reason.NO_SUBJECT)


__all__ = ["JwtVerifier", "Reason", "TokenRejected", "bearer_token"]

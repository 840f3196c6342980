"""JWT verification for the auth handler: HS256 and RS256, strict parsing, registered claims.

Written against RFC 7519/7515 with the stdlib (hmac, hashlib, base64, json), plus
``cryptography`` for RS256 loaded only when RS256 is configured. PyJWT would do the same work but
imports ``cryptography``'s X.509 stack on every cold start (about 70 ms), and the authorizer sits
on every request's path. PyJWT is the reference all the same: ``tests/functional/jwt_cases.py``
holds some 300 crafted tokens that ``tests/unit/handlers/test_jwt_differential.py`` (this module)
and ``tests/functional/handlers/test_auth_handler_differential.py`` (the whole handler) decide
both ways. This module never accepts a token PyJWT refuses with the same settings; where it is
deliberately stricter, that test lists the case and the reason.

Every failure is a :class:`TokenRejected` with a :class:`Reason`; ``verify`` raises nothing else
for any input (a stray exception would fail the authorizer's invocation: HTTP 500 for the caller,
and an error against the function's alarm). Defences, each tested:

* the token's size is capped (``max_token_bytes``) before any decoding;
* exactly three segments, each canonical base64url: the URL-safe alphabet only, no padding, and
  the unused low bits of the last character zero (so no two spellings decode to the same bytes);
* header and payload are UTF-8 JSON objects, nested at most :data:`MAX_JSON_DEPTH` deep (checked
  without recursion before the decoder runs), with no duplicate member names and no NaN/Infinity;
* ``alg`` must be one of the configured algorithms: ``none`` (any case) is never accepted;
* each algorithm has its own key (HS256: the secret, at least :data:`MIN_HS256_KEY_BYTES`;
  RS256: the configured public key, at least 2048 bits), so an HS256 token "signed" with the
  public key (algorithm confusion) fails; keys named by the token (``jwk``, ``jku``, ``x5u``,
  ``kid``) are never used, and ``kid`` must be a string;
* ``crit`` is refused (we implement no extensions), and so is ``b64`` (RFC 7797), whatever its value;
* ``exp`` is required; ``exp``, ``nbf`` and ``iat`` are JSON numbers (not strings, not booleans)
  between 1970 and 9999, compared in whole seconds as PyJWT does, with ``leeway_s`` of clock
  skew: expired when ``now >= exp + leeway_s``; refused when ``nbf`` or ``iat`` is later than
  ``now + leeway_s``;
* ``iss`` must equal the issuer; ``aud`` (a string, or a non-empty list of strings) must contain
  the audience; ``sub`` is a non-empty string of at most 256 characters; ``jti``, when present,
  is a string.
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
from collections.abc import Callable
from typing import Any

from common.errors import Unauthorized

#: HS256 keys shorter than this are refused (RFC 7518 section 3.2: a key of at least the hash size).
MIN_HS256_KEY_BYTES = 32
#: RS256 public keys smaller than this are refused at INIT (RFC 7518 section 3.3).
MIN_RSA_KEY_BITS = 2048
#: Deepest JSON nesting accepted in the header or the payload (the object itself is depth 1).
MAX_JSON_DEPTH = 16
#: Latest NumericDate accepted: 9999-12-31T23:59:59Z. Beyond it, a date is a mistake or an attack.
MAX_NUMERIC_DATE = 253_402_300_799

_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
#: Mask of the bits of the last character that carry no data, by segment length modulo 4.
_UNUSED_BITS = {2: 0b1111, 3: 0b0011}
#: The characters that matter for nesting: brackets, and the quotes and backslashes of strings.
_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')


class Reason(str, enum.Enum):
    """Why a token was rejected (logged and counted; never the token itself)."""

    MISSING = "missing_token"
    NOT_BEARER = "missing_bearer_prefix"
    OVERSIZED = "oversized_token"
    MALFORMED = "malformed_token"
    ALG_NONE = "alg_none"
    ALG_NOT_ALLOWED = "algorithm_not_allowed"
    CRITICAL_HEADER = "unsupported_critical_header"
    BAD_HEADER = "bad_header"
    BAD_SIGNATURE = "bad_signature"
    KEY_MISCONFIGURED = "key_misconfigured"
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
    """The token from an ``Authorization: Bearer <token>`` value, with the size checked first.

    RFC 6750 section 2.1: the scheme (any case), one or more spaces, the token. Spaces and tabs
    around the whole value are ignored (HTTP's optional whitespace); nothing else is trimmed, so a
    stray newline or tab inside makes the token malformed rather than silently cleaned.
    """
    if not isinstance(authorization, str):
        raise TokenRejected(Reason.MISSING)
    if len(authorization) > max_bytes + 64:  # room for the scheme and some spaces
        raise TokenRejected(Reason.OVERSIZED)
    if not authorization.strip(" \t"):
        raise TokenRejected(Reason.MISSING)
    scheme, separator, token = authorization.strip(" \t").partition(" ")
    token = token.lstrip(" ")
    if not separator or not scheme.isascii() or scheme.lower() != "bearer" or not token:
        raise TokenRejected(Reason.NOT_BEARER)
    if len(token) > max_bytes:
        raise TokenRejected(Reason.OVERSIZED)
    return token


def check_hs256_key(key: bytes) -> None:
    """Raise :class:`TokenRejected` (``key_misconfigured``) when an HS256 key is too short to be safe."""
    if len(key) < MIN_HS256_KEY_BYTES:
        raise TokenRejected(Reason.KEY_MISCONFIGURED,
                            f"the HS256 key is {len(key)} bytes; at least {MIN_HS256_KEY_BYTES} are required")


def _b64decode(segment: str, what: str) -> bytes:
    """Decode one canonical base64url segment (RFC 7515 section 2), refusing any other spelling."""
    if not _SEGMENT.fullmatch(segment):
        raise TokenRejected(Reason.MALFORMED, f"{what} is not base64url")
    remainder = len(segment) % 4
    if remainder == 1:
        raise TokenRejected(Reason.MALFORMED, f"{what} has an impossible base64url length")
    if remainder and _BASE64URL.index(segment[-1]) & _UNUSED_BITS[remainder]:
        raise TokenRejected(Reason.MALFORMED, f"{what} is not canonical base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the checks above admit only valid input
        raise TokenRejected(Reason.MALFORMED, f"{what} is not base64url") from None


def _too_deep(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests brackets deeper than ``limit``, found in one pass without recursion.

    Brackets inside strings do not count. On text that is not valid JSON the answer may be wrong
    in either direction, which is harmless: the decoder refuses that text anyway.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped_at = -1
    for match in _JSON_STRUCTURE.finditer(text):
        position = match.start()
        if position == escaped_at:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                escaped_at = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("duplicate member name")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(segment: str, what: str) -> dict[str, Any]:
    """The JSON object of a base64url segment: UTF-8, bounded depth, no duplicates, no NaN."""
    try:
        text = _b64decode(segment, what).decode("utf-8")
    except UnicodeDecodeError:
        raise TokenRejected(Reason.MALFORMED, f"{what} is not UTF-8") from None
    if _too_deep(text, MAX_JSON_DEPTH):
        raise TokenRejected(Reason.MALFORMED, f"{what} is nested deeper than {MAX_JSON_DEPTH}")
    try:
        value = json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise TokenRejected(Reason.MALFORMED, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(Reason.MALFORMED, f"{what} is not a JSON object")
    return value


def _numeric_date(claims: dict[str, Any], name: str) -> int | None:
    """The claim as whole seconds (truncated, as PyJWT's ``int()``), None when absent."""
    if name not in claims:
        return None
    value = claims[name]
    # type(), not isinstance(): bool is an int subclass. The range check also refuses NaN and
    # the infinities (1e400 decodes to inf), for which every comparison is false.
    if type(value) not in (int, float) or not 0 <= value <= MAX_NUMERIC_DATE:
        raise TokenRejected(Reason.BAD_CLAIM, f"{name} is not a NumericDate between 1970 and 9999")
    return int(value)


class JwtVerifier:
    """Verifies compact JWS tokens against the configured algorithms, keys and claims.

    ``clock`` gives "now" in epoch seconds (``time.time`` by default); tests replace it, as an
    attribute or a constructor argument, to decide time edges deterministically.
    """

    def __init__(self, *, algorithms: tuple[str, ...], issuer: str, audience: str, leeway_s: int = 30,
                 max_token_bytes: int = 8192, hs256_key: Callable[[], bytes] | None = None,
                 rs256_public_key_pem: str = "", clock: Callable[[], float] = time.time):
        self.algorithms = tuple(algorithms)
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.max_token_bytes = max_token_bytes
        self.clock = clock
        self._hs256_key = hs256_key
        self._rs256_key = None
        if "RS256" in self.algorithms:
            # Loaded at INIT, and only when RS256 is configured.
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            key = load_pem_public_key(rs256_public_key_pem.encode("ascii"))
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("JWT_PUBLIC_KEY is not an RSA public key")
            if key.key_size < MIN_RSA_KEY_BITS:
                raise ValueError(f"JWT_PUBLIC_KEY is a {key.key_size}-bit RSA key; RS256 needs at least "
                                 f"{MIN_RSA_KEY_BITS} bits: set jwt.public_key_pem in params to a larger key")
            self._rs256_key = key

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims when every check passes; else raise :class:`TokenRejected`."""
        if not isinstance(token, str):
            raise TokenRejected(Reason.MALFORMED, "the token is not a string")
        if len(token) > self.max_token_bytes:
            raise TokenRejected(Reason.OVERSIZED)
        segments = token.split(".")
        if len(segments) != 3:
            raise TokenRejected(Reason.MALFORMED, "not three segments")
        header_b64, payload_b64, signature_b64 = segments
        header = _json_object(header_b64, "header")
        algorithm = self._check_header(header)
        # Both remaining segments must be canonical before the signature is checked, but the
        # payload's JSON is only parsed once the signature holds.
        _b64decode(payload_b64, "payload")
        signature = _b64decode(signature_b64, "signature")
        signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
        if not self._signature_ok(algorithm, signing_input, signature):
            raise TokenRejected(Reason.BAD_SIGNATURE)
        claims = _json_object(payload_b64, "payload")
        self._check_claims(claims)
        return claims

    def _check_header(self, header: dict[str, Any]) -> str:
        """The header's algorithm, once the header passed every check."""
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or not algorithm:
            raise TokenRejected(Reason.MALFORMED, "header has no alg")
        if algorithm.lower() == "none":
            raise TokenRejected(Reason.ALG_NONE)
        if algorithm not in self.algorithms:
            raise TokenRejected(Reason.ALG_NOT_ALLOWED, f"alg {algorithm[:16]!r} not allowed")
        if "crit" in header:
            raise TokenRejected(Reason.CRITICAL_HEADER)
        if "b64" in header:
            raise TokenRejected(Reason.BAD_HEADER, "the b64 header parameter (RFC 7797) is not supported")
        if "kid" in header and not isinstance(header["kid"], str):
            raise TokenRejected(Reason.BAD_HEADER, "kid is not a string")
        return algorithm

    def _signature_ok(self, algorithm: str, signing_input: bytes, signature: bytes) -> bool:
        if algorithm == "HS256":
            if self._hs256_key is None:
                return False
            key = self._hs256_key()
            check_hs256_key(key)
            expected = hmac.new(key, signing_input, hashlib.sha256).digest()
            return hmac.compare_digest(expected, signature)
        if algorithm == "RS256" and self._rs256_key is not None:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            try:
                self._rs256_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            except (InvalidSignature, ValueError):
                return False
            return True
        return False

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self.clock()
        expires_at = _numeric_date(claims, "exp")
        not_before = _numeric_date(claims, "nbf")
        issued_at = _numeric_date(claims, "iat")
        if expires_at is None:
            raise TokenRejected(Reason.BAD_CLAIM, "exp is required")
        if expires_at <= now - self.leeway_s:
            raise TokenRejected(Reason.EXPIRED)
        if not_before is not None and not_before > now + self.leeway_s:
            raise TokenRejected(Reason.NOT_YET_VALID)
        if issued_at is not None and issued_at > now + self.leeway_s:
            raise TokenRejected(Reason.ISSUED_IN_FUTURE)
        if claims.get("iss") != self.issuer:
            raise TokenRejected(Reason.WRONG_ISSUER)
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not all(isinstance(member, str) for member in audiences):
            raise TokenRejected(Reason.WRONG_AUDIENCE, "aud is not a string or a list of strings")
        if self.audience not in audiences:
            raise TokenRejected(Reason.WRONG_AUDIENCE)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise TokenRejected(Reason.NO_SUBJECT)
        if "jti" in claims and not isinstance(claims["jti"], str):
            raise TokenRejected(Reason.BAD_CLAIM, "jti is not a string")


__all__ = ["JwtVerifier", "MAX_JSON_DEPTH", "MIN_HS256_KEY_BYTES", "Reason", "TokenRejected", "bearer_token",
           "check_hs256_key"]

"""Differential JWT cases for the auth handler, each decided by PyJWT as the reference.

Shared by ``tests/unit/handlers/test_jwt_differential.py`` (``common.tokens`` alone) and
``tests/functional/handlers/test_auth_handler_differential.py`` (the whole handler, through a
realistic HTTP API authorizer v2 event). Every case is an ``Authorization`` header value plus the
name of a verifier configuration (:data:`CONFIGS`); the cases are deterministic: fixed keys, fixed
claims, and a fixed clock (:data:`NOW`) for both sides.

The reference decision (:func:`pyjwt_accepts`) is RFC 6750's ``Bearer`` credentials syntax for the
header, then ``jwt.decode`` with the handler's settings: the same key per algorithm, algorithms,
audience, issuer, leeway, required claims, and PyJWT's own minimum key length enforced.

The project may be stricter than PyJWT only where :data:`STRICTER` says so, with the reason;
it must never accept what PyJWT rejects, and it must never raise.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from unittest import mock

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z, the fixed "now" of every case
LEEWAY_S = 30
ISSUER, AUDIENCE = "https://auth.local/", "lwb-api"  # as handler_kit.FUNCTION_ENV["auth-handler"]
MAX_TOKEN_BYTES = 8192
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")

HS256_KEY = "differential-hs256-key-0123456789abcdef0123456789"  # 49 bytes
SHORT_HS256_KEY = "short-key-16byte"  # 16 bytes: under HS256's 32-byte minimum

# Test-only RSA keys, generated for this file and used nowhere else (fixed so every run signs the
# same bytes: RS256 signatures are deterministic).
RSA_PRIVATE_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDBIBlFvt8GtL2/
KObtBJ4z0N/NeOTgunxNpVhREQjLazga4bNRrJTMiLCT+q+CS2naS+YZoJu4A7Wc
G/ra+qz7IHXxYT4EY0Up4XYT+dDGcHsGnv7zQXN3BUilrm13MGy332ezwW7493lJ
BiHZ3EkSz/N+hTlVP2onjopmoZUj/yi2ToHluPSdfFcLoqu5fYxAqclfgGUzIbTz
dGsyPM91ddEKDOG0lAmq56y9zjsfotpWJflWlzvpdqEDYckBLuJqNLEssXiyGYCi
uyA5Bm7H2E2Nn5rhjQVkBLutXWkubR0mZKioFX0/3REiqe0ZpihAiFVkksJpi64I
Hv05+MCDAgMBAAECggEALDqOryNsblu8TOgwIr35AULnzmXOfQ0YZKvmUwKEshmH
Ctj/uUe9+C2hyvIRedSNlHnnY50drIHk+LCLvdTFAupHOJWdn2GguFuzMBX5U0j1
U+nb15f4upxSK+eLmE1VyLJ4THmTUZ9Tfn7SB9PkRFOtnx8hpz1TsWV6mtCMmGZ0
FVPbycnvDV3yycOjXIbVORWAOOMwlhS3dAcRb9gqY/m6qebifwczWMNWaaTinOXo
7TvVFgRkVASZmVBQLcLqJ0m5i2FKwLl6SFsdEeY4eBGDu9K+G82qyvhxpareiamB
QLQ7Eqd2tqlkfMIZ52AGSNHUteWRSA3RkVubqt6wgQKBgQDyBLGL7cePLJEJOoSQ
Z14VVLwCSswW4uC460If8SU1/YOwsy4gjY1rlBhuPUgIozxqpAbJaHDsCGgifsIX
n4zJ+ZJNEK50bsAlAlnNA7KoD5W7L4U9xskKBl8dC4Z2evjFNhaG3GupybTJoFwa
xKX+iyGcuXACnNlyaVgykw0nwwKBgQDMSE7Fq7SXwJ+1DBvI73cWc6sqxOPm/4Dn
JGp8qxIRtseX/xr9tEramx8mib8k7gVsHIqAN6v6NviZrGJDp/SMNzC61u+fCGpH
HEV28PonzNA2NLdItnpA+rLT7n/fGBYxhiefVTbgXwKMRyjH4qfRADEWPqbu+/Da
f3U6MWU4QQKBgESjliNEddOiZSQD57L4zhMorAXOZuGayPdJKcDbaJ1OYDoOJ2fu
HYzEPMWPNc3VVf48tPwMVfJrU/Vsk+mVQ53I3Xhj4cZ93prgds2RXesSOHoVOSnT
JhNkyTb4nNMff0yXUX5AJ3zJCzAf/d9NpHJzzT2gzia/i2BKhkwZrqJ3AoGBAJsW
Agd7lbznldfC+40Oj2BSLA5qL4L9UoUoVleTIEKmetzf5UPajkFsJrgBN0X4FdG/
0T4KBdwNw6oW/vrSFYwlki8mYgBgSR73TZ1A0QlKKoAcgVEIh8OxD/ZpSFa8WIz8
hjQmY2TvfGW22DT30+ONu7ZhliY0yuN2hC7LtUaBAoGBAI+RzliQSqnR/sDbQ+sR
z9qfifwRU6qYr0y8nJegkdvo4l2Pj9booxGtRN5VKnLT5jpXg1a+ObtX5XezsBOE
chqdtG1uWNZvBAioKXsuFfSwtQNlQUzgjiSID+xoQxmTtFiIkOntI//x+2SWQdJ6
DCN0iyFyvzAO3UmBWkczPJUb
-----END PRIVATE KEY-----
"""
ATTACKER_RSA_PRIVATE_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCzmOSg6xZaXWa2
yBkUJGxZTQysgKbX9cEKNInMcXkt1OqlwhhI4LprN7MPyxAZTFxrYh+mNLg4WE3T
rsTP0+36+Cha2uGqrvQQud7T4QuQIKuP/waZqdqYAvCU/BNenMR18bZKj1EjyD0l
VBAWEtAAhjz5yJu6oNexbzCBYvc9hO4ksBvGu0nC3EjVpLLWPvGXvlIlsVecAnaP
uotIFfUbX7vZzdFUWWrxK+Ggpr/MlrUFCbZ9lKjeMZR33CI95l9uDHKW/1PMOyOt
2epkufc340U1mKKlJMBOB7d9pVvgPiZdbTxab5hOE/sPmuDf+6G8mHLSeoJG9QK1
lDwyQcvvAgMBAAECggEALlIlzZc0mbPzVPtA9J/8TgAAX9GCtrqMwlwQmmk97uM2
bfAkoU9M5XBlP5KJIW0/fPa+4PhB905XLFysKEop3Av7JIvFnmcnTdUSsqUdfVvf
w/Dru+BCH+jKMjLdsA5Q4XapJIvYSplPo/wNdhP+D9SPj4D9IWJwnzPlV8m1qOjb
gDsZnJ9fWRdWYw7d/MYPyMMv9s0H5Gr5hdTdCGlLBoLz5apf7TQMXwipWQEguKNZ
O+uJBGBnOQ43bfTpIzDiR7tnE77n3v68Cn9B/N1fcmiIblgYJH0t3PVU3B8NI/gQ
O3SIYIcaOsSb4M8lUcXB7kTaMdUYF6PR1jPL8QMzAQKBgQD1enb+9Ypm+jg0bw3C
t6yXbOI2vlt2yonFE8IOjxNCMiFknh2m2iK/9h/t/8R88Oyw6GaepT133M3gguD0
6DyB0fXRp/tKvEYBDsTrXjB8X/2HKwubQAlPynhIOcKgu16DhpNRWzYV9JB5mi+J
hEfapusix26FD3Hc+cjmcm29bwKBgQC7S4qFRzARh7Px1VPniZo0QvTQJapwUAbw
NCGEiJI1Y+uYmxV6hsESULzrBBAUZWD1FW5zAXA7iiESWshFwynONnvY4L/L98qu
vd4l3whkaqPVK3vcqVEEnfxcqPOCC9H8t+m/TVJGe4RnlZKBQE2oZmeIEfa90qlW
Iy5l1iKZgQKBgHOXMyljXcSX1pd6I7So4LB9KRg2EsOhI7aVUy+f16W4DVlfyv6i
gPJ7ZxWe9lsO56V2CbxyertSUe+CMYOhR7yprWMIAqByf1RILBnYxGQMn0liz5hP
UxMrd/AqoqclE6BDYmNQ2+sCunVIUVIj4+Hl75r05enqF+fCBwPcpigpAoGARuFl
wN6aAGhc3y6enEdlBlY4k/VNNUfz+D+iV6ffvTjdVlmKnV4V/zpy5HYbJ7zeHqJH
tFpdAQtbTLjyhgQ/8/yGjiMwMp7KI6tTQP3RDT+WVPwp2e5x7M9lTCPcU+DpTTzE
x1MZyfbAuvrOAQA2434tvD8gI+Jvl1ulGYEagwECgYA5/ShcxXnEWLC5XdNsq+lr
a89a71k0CVBXbjnNhJHC8r0xbLUxtCRXJXKyYKD8cH6CE8OGKXQJfeV7MguvtS3h
3fw08/UUl6bI9uGKUElSc9XYSSCKWg5K9ADc8muzbr10/fVM1DzzXAhgoT6u6RtX
B4urBmG+C/XJONsmS77GAw==
-----END PRIVATE KEY-----
"""


def _private_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem.encode("ascii"), password=None)


def _public_pem(private: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


RSA_PRIVATE = _private_key(RSA_PRIVATE_PEM)
RSA_PUBLIC_PEM = _public_pem(RSA_PRIVATE)
ATTACKER_RSA_PRIVATE = _private_key(ATTACKER_RSA_PRIVATE_PEM)
ATTACKER_RSA_PUBLIC_PEM = _public_pem(ATTACKER_RSA_PRIVATE)


@dataclass(frozen=True)
class VerifierConfig:
    """One configuration of the auth handler: allowed algorithms and the HS256 key its secret holds."""

    algorithms: tuple[str, ...]
    hs256_key: str = HS256_KEY

    @property
    def public_key_pem(self) -> str:
        return RSA_PUBLIC_PEM if "RS256" in self.algorithms else ""


#: The configurations the cases run under (the handler's env: JWT_ALGORITHMS, JWT_PUBLIC_KEY, secret).
CONFIGS: dict[str, VerifierConfig] = {
    "hs256": VerifierConfig(("HS256",)),
    "hs256+rs256": VerifierConfig(("HS256", "RS256")),
    "rs256": VerifierConfig(("RS256",)),
    "short-key": VerifierConfig(("HS256",), hs256_key=SHORT_HS256_KEY),
}


@dataclass(frozen=True)
class Case:
    """One crafted Authorization value, run under one configuration."""

    id: str
    authorization: str
    config: str = "hs256"


# --- building tokens ---------------------------------------------------------------------------

class RawJson(str):
    """JSON text used verbatim (duplicate keys, NaN, 1e400, deep nesting: what json.dumps won't write)."""


def b64url(raw: bytes) -> str:
    """Canonical base64url without padding."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def segment(value: Any) -> str:
    """A header or payload segment: bytes as they are, RawJson verbatim, anything else as compact JSON."""
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, RawJson):
        raw = str(value).encode("utf-8")
    else:
        raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return b64url(raw)


def sign(algorithm: str, signing_input: bytes, key: Any) -> bytes:
    """The signature bytes of ``signing_input`` (HS*, RS*, PS256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    if algorithm.upper().startswith("HS"):
        digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[algorithm[2:]]
        return hmac.new(key if isinstance(key, bytes) else key.encode("utf-8"), signing_input, digest).digest()
    hash_algorithm = {"256": hashes.SHA256(), "384": hashes.SHA384()}[algorithm[2:]]
    if algorithm.startswith("PS"):
        return key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=0),  # deterministic
                        hash_algorithm)
    return key.sign(signing_input, padding.PKCS1v15(), hash_algorithm)


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid payload at :data:`NOW`; ``name=DROP`` removes a claim."""
    body: dict[str, Any] = {"sub": "user-123", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "nbf": NOW,
                            "exp": NOW + 300, "scope": "items:read"}
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not DROP}


DROP = object()


def token(header: Any = None, payload: Any = None, *, algorithm: str = "HS256", key: Any = HS256_KEY) -> str:
    """A compact JWS over exactly these segments, signed with ``algorithm`` and ``key``."""
    header_segment = header if isinstance(header, Segment) else segment(
        {"alg": "HS256", "typ": "JWT"} if header is None else header)
    payload_segment = payload if isinstance(payload, Segment) else segment(claims() if payload is None else payload)
    signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
    return f"{header_segment}.{payload_segment}.{b64url(sign(algorithm, signing_input, key))}"


class Segment(str):
    """An already encoded segment, used verbatim by :func:`token` (padding, odd alphabets)."""


def rs256(payload: Any = None, header: Any = None, private: Any = None) -> str:
    return token({"alg": "RS256", "typ": "JWT"} if header is None else header, payload, algorithm="RS256",
                 key=private or RSA_PRIVATE)


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "1") -> RawJson:
    """JSON text nested ``depth`` deep (arrays by default)."""
    if open_ == "{":
        return RawJson('{"":' * depth + inner + "}" * depth)  # the shortest member name keeps 1000 under 8 KB
    return RawJson(open_ * depth + inner + close * depth)


def _alphabet_index(char: str) -> int:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(char)


def noncanonical_variants(encoded: str) -> list[str]:
    """Every other spelling of the last character that decodes to the same bytes (unused bits set)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused_bits = {2: 4, 3: 2}.get(len(encoded) % 4, 0)
    if not unused_bits:
        return []
    base = _alphabet_index(encoded[-1]) & ~((1 << unused_bits) - 1)
    return [encoded[:-1] + alphabet[base | low] for low in range(1, 1 << unused_bits)]


def with_padding(encoded: str) -> str:
    return encoded + "=" * (-len(encoded) % 4)


def standard_alphabet(encoded: str) -> str:
    return encoded.replace("-", "+").replace("_", "/")


# --- the cases ---------------------------------------------------------------------------------

def bearer(value: str) -> str:
    return f"Bearer {value}"


def build_cases() -> list[Case]:
    """Every differential case, in a fixed order."""
    cases: list[Case] = []

    def add(case_id: str, compact: str, config: str = "hs256") -> None:
        cases.append(Case(case_id, bearer(compact), config))

    def add_header(case_id: str, authorization: str, config: str = "hs256") -> None:
        cases.append(Case(case_id, authorization, config))

    valid = token()
    valid_rs256 = rs256()

    # valid tokens: both sides must accept
    add("valid/hs256", valid)
    import jwt

    add("valid/hs256-encoded-by-pyjwt", jwt.encode(claims(), HS256_KEY, algorithm="HS256"))
    add("valid/hs256-under-hs256+rs256", valid, "hs256+rs256")
    add("valid/rs256-under-hs256+rs256", valid_rs256, "hs256+rs256")
    add("valid/rs256-under-rs256", valid_rs256, "rs256")
    add("valid/no-typ", token({"alg": "HS256"}))
    add("valid/minimal-claims", token(payload={"sub": "u", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60}))
    add("valid/aud-list-with-ours", token(payload=claims(aud=["other-api", AUDIENCE])))
    add("valid/float-times", token(payload=claims(iat=NOW + 0.25, nbf=NOW - 0.5, exp=NOW + 300.5)))
    add("valid/unicode-claims", token(payload=claims(name="Zo\u00eb \u2713", email="z@example.com")))
    add("valid/jti-string", token(payload=claims(jti="c0ffee")))
    add("valid/kid-string", token({"alg": "HS256", "typ": "JWT", "kid": "key-2026"}))
    add("valid/kid-sql-injection-is-inert", token({"alg": "HS256", "kid": "' OR 1=1 --"}))
    add("valid/jku-header-is-ignored", token({"alg": "HS256", "jku": "https://evil.example/jwks.json"}))
    add("valid/x5u-header-is-ignored", token({"alg": "HS256", "x5u": "https://evil.example/cert.pem"}))
    add("valid/jwk-header-is-ignored", token({"alg": "HS256", "jwk": {"kty": "oct", "k": b64url(b"attacker")}}))
    add("valid/nested-claims-depth-4", token(payload=claims(realm={"roles": [["admin"], ["ops"]]})))
    add("valid/exp-at-year-9999", token(payload=claims(exp=253_402_300_799)))
    add("valid/iat-and-nbf-zero", token(payload=claims(iat=0, nbf=0)))
    add("valid/exp-exponent-notation", token(payload=RawJson(
        f'{{"sub":"u","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":1.8000003e9}}')))
    add("valid/brackets-inside-strings", token(payload=claims(note="[" * 1000 + "{" * 1000)))
    add("valid/escaped-quotes-and-brackets", token(payload=RawJson(
        f'{{"sub":"u","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{NOW + 60},"n":"\\"[[[[\\\\","m":[[1]]}}')))

    # algorithm confusion
    public_pem = RSA_PUBLIC_PEM
    for config in ("hs256+rs256", "rs256", "hs256"):
        add(f"confusion/hs256-signed-with-rsa-public-pem/{config}", token(key=public_pem), config)
    add("confusion/hs256-signed-with-public-pem-no-newline", token(key=public_pem.strip()), "hs256+rs256")
    add("confusion/rs256-header-hs256-signature-with-public-pem",
        token({"alg": "RS256", "typ": "JWT"}, key=public_pem), "hs256+rs256")
    add("confusion/rs256-when-only-hs256", valid_rs256)
    add("confusion/hs256-when-only-rs256", valid, "rs256")
    add("confusion/rs256-signed-by-attacker", rs256(private=ATTACKER_RSA_PRIVATE), "hs256+rs256")
    add("confusion/hs384-with-our-key", token({"alg": "HS384"}, algorithm="HS384"))
    add("confusion/hs512-with-our-key", token({"alg": "HS512"}, algorithm="HS512"))
    add("confusion/rs384-with-our-rsa-key", token({"alg": "RS384"}, algorithm="RS384", key=RSA_PRIVATE), "hs256+rs256")
    add("confusion/ps256-with-our-rsa-key", token({"alg": "PS256"}, algorithm="PS256", key=RSA_PRIVATE), "hs256+rs256")
    # ECDSA signatures are randomised: a fixed 64-byte r||s keeps the case byte-for-byte stable
    # (it is refused for its alg before any signature check, by both sides).
    es_signing_input = f"{segment({'alg': 'ES256', 'typ': 'JWT'})}.{segment(claims())}"
    add("confusion/es256", f"{es_signing_input}.{b64url(bytes(range(64)))}", "hs256+rs256")
    for name, alg in (("lowercase", "hs256"), ("mixed-case", "Hs256"), ("trailing-space", "HS256 "),
                      ("leading-space", " HS256"), ("suffix", "HS2560"), ("empty", "")):
        add(f"confusion/alg-{name}", token({"alg": alg}))
    for name, alg in (("null", None), ("number", 256), ("list", ["HS256"]), ("object", {"name": "HS256"}),
                      ("bool", True)):
        add(f"confusion/alg-{name}", token({"alg": alg}))
    add("confusion/alg-missing", token({"typ": "JWT"}))
    add("confusion/hs256-signed-with-empty-key", token(key=""))

    # "none"
    for alg in ("none", "None", "NONE", "nOnE"):
        header = segment({"alg": alg, "typ": "JWT"})
        payload = segment(claims())
        add(f"none/{alg}-empty-signature", f"{header}.{payload}.")
        add(f"none/{alg}-garbage-signature", f"{header}.{payload}.c2ln")
        add(f"none/{alg}-hs256-signature", token({"alg": alg, "typ": "JWT"}))
    add("none/none-under-hs256+rs256", f"{segment({'alg': 'none'})}.{segment(claims())}.", "hs256+rs256")
    add("none/none-two-segments", f"{segment({'alg': 'none'})}.{segment(claims())}")

    # header injection: keys and key locations named by the token itself
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ATTACKER_RSA_PRIVATE.public_key()))
    add("injection/jwk-attacker-rsa", rs256(header={"alg": "RS256", "jwk": attacker_jwk}, private=ATTACKER_RSA_PRIVATE),
        "hs256+rs256")
    add("injection/jwk-attacker-oct", token({"alg": "HS256", "jwk": {"kty": "oct", "k": b64url(b"attacker-secret")}},
                                            key="attacker-secret"))
    add("injection/jku-attacker", rs256(header={"alg": "RS256", "jku": "https://evil.example/jwks.json"},
                                        private=ATTACKER_RSA_PRIVATE), "hs256+rs256")
    add("injection/x5u-attacker", rs256(header={"alg": "RS256", "x5u": "https://evil.example/cert.pem"},
                                        private=ATTACKER_RSA_PRIVATE), "hs256+rs256")
    add("injection/x5c-attacker", rs256(header={"alg": "RS256", "x5c": [b64url(b"not-a-certificate")]},
                                        private=ATTACKER_RSA_PRIVATE), "hs256+rs256")
    add("injection/kid-path-traversal-empty-key", token({"alg": "HS256", "kid": "../../../../dev/null"}, key=""))
    for name, kid in (("number", 7), ("null", None), ("list", ["key-1"]), ("object", {"id": 1}), ("bool", False)):
        add(f"injection/kid-{name}", token({"alg": "HS256", "kid": kid}))

    # crit and b64 (RFC 7515 section 4.1.11, RFC 7797)
    for name, header in (
        ("crit-exp", {"alg": "HS256", "crit": ["exp"], "exp": NOW + 60}),
        ("crit-empty-list", {"alg": "HS256", "crit": []}),
        ("crit-string", {"alg": "HS256", "crit": "b64", "b64": True}),
        ("crit-null", {"alg": "HS256", "crit": None}),
        ("crit-number-member", {"alg": "HS256", "crit": [1]}),
        ("crit-custom-extension", {"alg": "HS256", "crit": ["x-custom"], "x-custom": 1}),
        ("crit-b64-missing-from-header", {"alg": "HS256", "crit": ["b64"]}),
        ("crit-b64-true", {"alg": "HS256", "crit": ["b64"], "b64": True}),
        ("crit-b64-twice-true", {"alg": "HS256", "crit": ["b64", "b64"], "b64": True}),
        ("crit-b64-false-with-payload", {"alg": "HS256", "crit": ["b64"], "b64": False}),
        ("b64-false-without-crit", {"alg": "HS256", "b64": False}),
        ("b64-true-without-crit", {"alg": "HS256", "b64": True}),
        ("b64-string-false", {"alg": "HS256", "b64": "false"}),
        ("b64-zero", {"alg": "HS256", "b64": 0}),
        ("b64-null", {"alg": "HS256", "b64": None}),
    ):
        add(f"crit/{name}", token(header))
    unencoded_header = segment({"alg": "HS256", "b64": False})
    raw_payload = json.dumps(claims(), separators=(",", ":"))
    unencoded_signature = b64url(sign("HS256", f"{unencoded_header}.{raw_payload}".encode(), HS256_KEY))
    add("crit/b64-false-unencoded-signature-no-crit", f"{unencoded_header}.{segment(claims())}.{unencoded_signature}")
    detached_header = segment({"alg": "HS256", "b64": False, "crit": ["b64"]})
    detached_signature = b64url(sign("HS256", f"{detached_header}.{raw_payload}".encode(), HS256_KEY))
    add("crit/b64-false-detached-payload", f"{detached_header}..{detached_signature}")

    # time edges at NOW with a 30 s leeway (expired when now >= exp + leeway; nbf/iat in the
    # future beyond the leeway are refused); PyJWT compares whole seconds (int())
    for name, overrides in (
        ("exp-now", {"exp": NOW}),
        ("exp-now-minus-leeway-plus-1", {"exp": NOW - LEEWAY_S + 1}),
        ("exp-exactly-now-minus-leeway", {"exp": NOW - LEEWAY_S}),
        ("exp-now-minus-leeway-minus-1", {"exp": NOW - LEEWAY_S - 1}),
        ("exp-float-truncated-onto-the-edge", {"exp": NOW - LEEWAY_S + 0.5}),
        ("exp-float-half-second-outside", {"exp": NOW - LEEWAY_S - 0.5}),
        ("exp-missing", {"exp": DROP}),
        ("nbf-now-plus-leeway", {"nbf": NOW + LEEWAY_S}),
        ("nbf-now-plus-leeway-plus-1", {"nbf": NOW + LEEWAY_S + 1}),
        ("nbf-float-just-past-leeway", {"nbf": NOW + LEEWAY_S + 0.5}),
        ("nbf-now-plus-leeway-minus-1", {"nbf": NOW + LEEWAY_S - 1}),
        ("nbf-long-ago", {"nbf": NOW - 10**6}),
        ("iat-now-plus-leeway", {"iat": NOW + LEEWAY_S}),
        ("iat-now-plus-leeway-plus-1", {"iat": NOW + LEEWAY_S + 1}),
        ("iat-float-just-past-leeway", {"iat": NOW + LEEWAY_S + 0.9}),
        ("iat-long-ago", {"iat": NOW - 10**7}),
        ("nbf-after-exp", {"nbf": NOW + 10, "exp": NOW + 5}),
    ):
        add(f"time/{name}", token(payload=claims(**overrides)))

    # time types: every claim that carries a NumericDate
    big = "1" + "0" * 399
    for claim in ("exp", "nbf", "iat"):
        plausible = NOW + 60 if claim == "exp" else NOW - 60  # valid as a number: only the type is wrong
        for name, raw in (
            ("numeric-string", json.dumps(str(plausible))),
            ("word-string", '"tomorrow"'),
            ("true", "true"),
            ("false", "false"),
            ("null", "null"),
            ("nan", "NaN"),
            ("infinity", "Infinity"),
            ("minus-infinity", "-Infinity"),
            ("1e400", "1e400"),
            ("minus-1e400", "-1e400"),
            ("400-digits", big),
            ("minus-400-digits", "-" + big),
            ("minus-one", "-1"),
            ("list", f"[{plausible}]"),
            ("object", f'{{"t":{plausible}}}'),
            ("1e300", "1e300"),
            ("1e12", "1e12"),
            ("5e-324", "5e-324"),
        ):
            body = claims(**{claim: DROP})
            text = json.dumps(body, separators=(",", ":"))[:-1] + f',"{claim}":{raw}}}'
            add(f"time-type/{claim}-{name}", token(payload=RawJson(text)))
    add("time-type/exp-5000-digits", token(payload=RawJson(
        json.dumps(claims(exp=DROP), separators=(",", ":"))[:-1] + ',"exp":' + "9" * 5000 + "}")))

    # aud, iss, sub, jti shapes
    for name, value in (
        ("missing", DROP), ("empty-string", ""), ("empty-list", []), ("list-ours-only", [AUDIENCE]),
        ("list-without-ours", ["other-api"]), ("nested-list", [[AUDIENCE]]), ("ours-and-number", [AUDIENCE, 1]),
        ("ours-and-null", [AUDIENCE, None]), ("ours-and-bool", [AUDIENCE, True]), ("ours-and-list", [AUDIENCE, ["x"]]),
        ("ours-and-object", [AUDIENCE, {"a": 1}]), ("object", {"aud": AUDIENCE}), ("number", 1), ("null", None),
        ("upper-case", AUDIENCE.upper()), ("trailing-space", AUDIENCE + " "), ("prefix", AUDIENCE[:-1]),
    ):
        add(f"aud/{name}", token(payload=claims(aud=value)))
    for name, value in (
        ("missing", DROP), ("list", [ISSUER]), ("null", None), ("number", 1), ("empty", ""),
        ("suffix", ISSUER + "x"), ("no-trailing-slash", ISSUER.rstrip("/")), ("upper-case", ISSUER.upper()),
    ):
        add(f"iss/{name}", token(payload=claims(iss=value)))
    for name, value in (("missing", DROP), ("empty", ""), ("number", 123), ("null", None), ("list", ["user-123"]),
                        ("300-chars", "u" * 300)):
        add(f"sub/{name}", token(payload=claims(sub=value)))
    for name, value in (("number", 123), ("null", None), ("list", ["a"])):
        add(f"jti/{name}", token(payload=claims(jti=value)))

    # duplicate member names (RFC 7515 section 5.2: reject, or take the last)
    payload_text = json.dumps(claims(), separators=(",", ":"))[1:]
    add("duplicate/header-alg-none-then-hs256", token(RawJson('{"alg":"none","alg":"HS256","typ":"JWT"}')))
    add("duplicate/header-alg-hs256-then-none", token(RawJson('{"alg":"HS256","alg":"none","typ":"JWT"}')))
    add("duplicate/payload-sub", token(payload=RawJson('{"sub":"admin",' + payload_text)))
    add("duplicate/payload-exp-expired-then-valid", token(payload=RawJson(f'{{"exp":{NOW - 3600},' + payload_text)))
    add("duplicate/payload-exp-valid-then-expired",
        token(payload=RawJson(json.dumps(claims(exp=DROP), separators=(",", ":"))[:-1]
                              + f',"exp":{NOW + 60},"exp":{NOW - 3600}}}')))
    add("duplicate/payload-aud-wrong-then-right", token(payload=RawJson('{"aud":"other-api",' + payload_text)))

    # JSON that is not an object
    for name, raw in (("array", "[]"), ("string", '"HS256"'), ("number", "1"), ("null", "null"), ("true", "true"),
                      ("empty-object", "{}"), ("empty", "")):
        add(f"non-object/header-{name}", token(RawJson(raw)))
        add(f"non-object/payload-{name}", token(payload=RawJson(raw)))
    add("non-object/header-not-utf8", token(b"\xff\xfe\xfd"))
    add("non-object/header-utf16", token('{"alg":"HS256","typ":"JWT"}'.encode("utf-16")))
    add("non-object/payload-utf8-bom", token(payload=b"\xef\xbb\xbf" + json.dumps(claims()).encode()))
    add("non-object/payload-utf16-le", token(payload=json.dumps(claims()).encode("utf-16-le")))
    add("non-object/payload-control-character", token(payload=RawJson(
        json.dumps(claims(), separators=(",", ":"))[:-1] + ',"x":"a\x01b"}')))

    # base64url: padding, canonical form, alphabet
    header_a, payload_a, signature_a = valid.split(".")
    for index, variant in enumerate(noncanonical_variants(signature_a)):
        add(f"base64/hs256-signature-noncanonical-{index + 1}", f"{header_a}.{payload_a}.{variant}")
    header_r, payload_r, signature_r = valid_rs256.split(".")
    for index, variant in enumerate(noncanonical_variants(signature_r)):
        add(f"base64/rs256-signature-noncanonical-{index + 1:02d}", f"{header_r}.{payload_r}.{variant}", "hs256+rs256")
    odd_header = _header_needing_padding()
    add("base64/header-noncanonical", token(Segment(noncanonical_variants(segment(odd_header))[0])))
    odd_payload = _payload_needing_padding()
    add("base64/payload-noncanonical", token(payload=Segment(noncanonical_variants(segment(odd_payload))[0])))
    add("base64/header-padded", token(Segment(with_padding(segment(odd_header)))))
    add("base64/payload-padded", token(payload=Segment(with_padding(segment(odd_payload)))))
    add("base64/signature-padded", f"{header_a}.{payload_a}.{with_padding(signature_a)}")
    add("base64/signature-double-padded", f"{header_a}.{payload_a}.{signature_a}==")
    add("base64/header-short-padding", token(Segment(segment(odd_header) + "=")) if len(segment(odd_header)) % 4 == 2
        else token(Segment(segment(odd_header) + "==")))
    add("base64/padding-inside-signature", f"{header_a}.{payload_a}.{signature_a[:20]}={signature_a[20:]}")
    add("base64/signature-length-mod-4-is-1", f"{header_a}.{payload_a}.{signature_a}AA")
    add("base64/signature-truncated", f"{header_a}.{payload_a}.{signature_a[:-1]}")
    add("base64/signature-extra-char", f"{header_a}.{payload_a}.{signature_a}A")
    std = _token_with_url_alphabet_in_every_segment()
    std_header, std_payload, std_signature = std.split(".")
    add("base64/signature-standard-alphabet", f"{std_header}.{std_payload}.{standard_alphabet(std_signature)}")
    add("base64/payload-standard-alphabet-signed",
        token(Segment(std_header), Segment(standard_alphabet(std_payload))))
    add("base64/header-standard-alphabet-signed",
        token(Segment(standard_alphabet(std_header)), Segment(std_payload)))
    add("base64/token-with-url-alphabet", std)
    for name, char in (("bang", "!"), ("percent", "%"), ("asterisk", "*"), ("space", " "), ("tilde", "~")):
        add(f"base64/signature-with-{name}", f"{header_a}.{payload_a}.{signature_a[:10]}{char}{signature_a[11:]}")
    add("base64/non-ascii-in-header", f"{header_a[:-1]}\u00e9.{payload_a}.{signature_a}")
    add("base64/signature-of-another-token", f"{header_a}.{segment(claims(sub='admin'))}.{signature_a}")

    # segment counts and empty segments
    for name, compact in (
        ("one", header_a), ("two", f"{header_a}.{payload_a}"), ("four", f"{valid}.{signature_a}"),
        ("five-jwe-shape", f"{segment({'alg': 'dir', 'enc': 'A256GCM'})}..{b64url(b'iv' * 6)}.{payload_a}.{b64url(b'tag' * 5)}"),
        ("trailing-dot", f"{valid}."), ("leading-dot", f".{valid}"), ("empty-header", f".{payload_a}.{signature_a}"),
        ("empty-payload", f"{header_a}..{signature_a}"), ("only-dots", ".."), ("three-dots", "..."), ("single-dot", "."),
        ("double-dot-inside", f"{header_a}..{payload_a}.{signature_a}"),
    ):
        add(f"segments/{name}", compact)

    # size: the project caps the token at 8 KB before decoding
    add("size/valid-at-limit", _token_of_length(MAX_TOKEN_BYTES))
    add("size/valid-one-byte-over", _token_of_length(MAX_TOKEN_BYTES + 1))
    add("size/valid-100kb", token(payload=claims(blob="x" * 100_000)))
    add("size/garbage-1mb", "a" * 1_000_000 + ".b.c")

    # nesting depth in the header (unauthenticated) and in signed payloads
    deep_header = segment(RawJson('{"alg":"HS256","x":' + nested(1000) + "}"))
    add("nesting/header-arrays-1000-deep-unsigned", f"{deep_header}.{payload_a}.{signature_a}")
    deep_object_header = segment(RawJson('{"alg":"HS256","x":' + nested(1000, "{") + "}"))
    add("nesting/header-objects-1000-deep-unsigned", f"{deep_object_header}.{payload_a}.{signature_a}")
    add("nesting/header-arrays-1000-deep-signed", token(RawJson('{"alg":"HS256","x":' + nested(1000) + "}")))
    add("nesting/header-arrays-20-deep-signed", token(RawJson('{"alg":"HS256","x":' + nested(19) + "}")))
    payload_prefix = json.dumps(claims(), separators=(",", ":"))[:-1]
    add("nesting/payload-arrays-1000-deep-signed", token(payload=RawJson(payload_prefix + ',"x":' + nested(999) + "}")))
    add("nesting/payload-objects-1000-deep-signed",
        token(payload=RawJson(payload_prefix + ',"x":' + nested(999, "{") + "}")))
    deep_payload = segment(RawJson(payload_prefix + ',"x":' + nested(999) + "}"))
    add("nesting/payload-arrays-1000-deep-forged", f"{header_a}.{deep_payload}.{signature_a}")
    add("nesting/payload-arrays-500-deep-signed", token(payload=RawJson(payload_prefix + ',"x":' + nested(499) + "}")))
    add("nesting/payload-depth-17-signed", token(payload=RawJson(payload_prefix + ',"x":' + nested(16) + "}")))
    add("nesting/payload-depth-16-signed", token(payload=RawJson(payload_prefix + ',"x":' + nested(15) + "}")))

    # key length: a 16-byte HS256 secret is refused, whatever the token
    add("key/short-key-valid-signature", token(key=SHORT_HS256_KEY), "short-key")
    add("key/short-key-token-signed-with-long-key", valid, "short-key")

    # the Authorization header itself (RFC 6750 section 2.1; RFC 9110 auth-scheme is case-insensitive)
    for name, authorization in (
        ("lowercase-scheme", f"bearer {valid}"),
        ("uppercase-scheme", f"BEARER {valid}"),
        ("mixed-case-scheme", f"bEaReR {valid}"),
        ("two-spaces", f"Bearer  {valid}"),
        ("many-spaces", f"Bearer      {valid}"),
        ("tab-separator", f"Bearer\t{valid}"),
        ("leading-tab", f"\tBearer {valid}"),
        ("leading-and-trailing-spaces", f"  Bearer {valid}  "),
        ("trailing-tab", f"Bearer {valid}\t"),
        ("trailing-newline", f"Bearer {valid}\n"),
        ("trailing-crlf", f"Bearer {valid}\r\n"),
        ("vertical-tab-separator", f"Bearer\x0b{valid}"),
        ("no-break-space-separator", f"Bearer\u00a0{valid}"),
        ("missing-scheme", valid),
        ("double-scheme", f"Bearer Bearer {valid}"),
        ("no-space", f"Bearer{valid}"),
        ("scheme-only", "Bearer"),
        ("scheme-and-space", "Bearer "),
        ("empty", ""),
        ("whitespace-only", "  \t "),
        ("token-scheme", f"Token {valid}"),
        ("basic-scheme", f"Basic {valid}"),
        ("jwt-scheme", f"JWT {valid}"),
        ("trailing-garbage", f"Bearer {valid} extra"),
        ("trailing-comma", f"Bearer {valid},"),
        ("two-tokens-comma", f"Bearer {valid}, Bearer {valid}"),
        ("quoted-token", f'Bearer "{valid}"'),
        ("scheme-with-colon", f"Bearer: {valid}"),
    ):
        add_header(f"bearer/{name}", authorization)
    return cases


def _header_needing_padding() -> dict[str, Any]:
    """An HS256 header whose base64url form has unused bits (length % 4 == 2 or 3)."""
    for kid in ("k", "k1", "k12"):
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        if len(segment(header)) % 4 in (2, 3):
            return header
    raise AssertionError("no header length needs padding")  # pragma: no cover - arithmetic


def _payload_needing_padding() -> dict[str, Any]:
    for pad in ("", "x", "xy"):
        payload = claims(pad=pad)
        if len(segment(payload)) % 4 in (2, 3):
            return payload
    raise AssertionError("no payload length needs padding")  # pragma: no cover - arithmetic


def _token_with_url_alphabet_in_every_segment() -> str:
    """A valid token whose three segments each contain '-' or '_' (so a '+'/'/' spelling differs)."""
    for nonce in range(10_000):
        header = {"alg": "HS256", "typ": "JWT", "kid": f"k{nonce}~~~"}
        compact = token(header, claims(nonce=f"{nonce}>>>???"))
        if all(set(part) & {"-", "_"} for part in compact.split(".")):
            return compact
    raise AssertionError("no nonce gave '-' or '_' in every segment")  # pragma: no cover


def _token_of_length(length: int) -> str:
    """A valid HS256 token exactly ``length`` characters long (a filler claim sized to fit)."""
    base = len(token(payload=claims(blob="")))
    filler = (length - base) * 3 // 4
    for size in range(max(0, filler - 4), filler + 8):
        compact = token(payload=claims(blob="x" * size))
        if len(compact) == length:
            return compact
    raise AssertionError(f"no filler gives a token of {length} characters")  # pragma: no cover


# --- the reference -----------------------------------------------------------------------------

_BEARER_CREDENTIALS = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")


def reference_token(authorization: Any) -> str | None:
    """The token of an ``Authorization`` value per RFC 6750 section 2.1, else None.

    ``credentials = "Bearer" 1*SP b64token``, the scheme case-insensitive (RFC 9110 section 11.1);
    optional whitespace (SP / HTAB) around a field value is not part of it (RFC 9110 section 5.5).
    """
    if not isinstance(authorization, str):
        return None
    match = _BEARER_CREDENTIALS.fullmatch(authorization.strip(" \t"))
    return match.group(1) if match else None


class _FrozenDatetime(datetime):
    """``datetime`` whose ``now()`` is :data:`NOW` (PyJWT reads the time through ``datetime.now``)."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime.fromtimestamp(NOW, tz)


@contextmanager
def pyjwt_clock() -> Iterator[None]:
    """PyJWT's clock frozen at :data:`NOW`."""
    import jwt.api_jwt

    with mock.patch.object(jwt.api_jwt, "datetime", _FrozenDatetime):
        yield


def pyjwt_accepts(case: Case) -> bool:
    """Whether PyJWT, with the handler's settings, accepts the token of ``case``."""
    import jwt

    compact = reference_token(case.authorization)
    if compact is None:
        return False
    config = CONFIGS[case.config]
    try:
        algorithm = jwt.get_unverified_header(compact).get("alg")
        if algorithm == "HS256" or not config.public_key_pem:
            key: Any = config.hs256_key
        else:
            key = RSA_PRIVATE.public_key()
        with pyjwt_clock():
            jwt.decode(compact, key, algorithms=list(config.algorithms), audience=AUDIENCE, issuer=ISSUER,
                       leeway=LEEWAY_S, options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True})
    except Exception:  # noqa: BLE001 - any refusal, including PyJWT's own exceptions, is "rejects"
        return False
    return True


#: Cases the project refuses although PyJWT accepts them, each with the reason it is deliberate.
STRICTER: dict[str, str] = {
    # RFC 7797 is not implemented: any b64 header parameter is refused, and so is any crit.
    "crit/crit-b64-true": "crit is refused: no JWS extension is implemented (PyJWT knows b64)",
    "crit/crit-b64-twice-true": "crit is refused: no JWS extension is implemented (PyJWT knows b64)",
    "crit/b64-true-without-crit": "the b64 header parameter is refused whatever its value",
    "crit/b64-string-false": "the b64 header parameter is refused whatever its value",
    "crit/b64-zero": "the b64 header parameter is refused whatever its value",
    "crit/b64-null": "the b64 header parameter is refused whatever its value",
    # NumericDate: a JSON number (not a string, not a bool) between 1970 and 9999.
    **{f"time-type/{claim}-numeric-string": "a NumericDate is a JSON number; PyJWT converts strings with int()"
       for claim in ("exp", "nbf", "iat")},
    **{f"time-type/{claim}-{value}": "a NumericDate is a JSON number; PyJWT converts bools with int()"
       for claim in ("nbf", "iat") for value in ("true", "false")},
    **{f"time-type/{claim}-{value}": "a NumericDate before 1970 is refused (PyJWT takes it as the distant past)"
       for claim in ("nbf", "iat") for value in ("minus-400-digits", "minus-one")},
    "time-type/exp-400-digits": "a NumericDate after 9999 is refused (PyJWT: a token that never expires)",
    "time-type/exp-1e300": "a NumericDate after 9999 is refused (PyJWT: a token that never expires)",
    "time-type/exp-1e12": "a NumericDate after 9999 is refused (PyJWT: a token that never expires)",
    # sub: the principal passed to the API must be a non-empty string of at most 256 characters.
    "sub/empty": "the principal (sub) must be non-empty",
    "sub/300-chars": "the principal (sub) is at most 256 characters",
    # JSON: RFC 8259 text in UTF-8, no duplicate member names (RFC 7515 section 5.2 allows refusing).
    "duplicate/header-alg-none-then-hs256": "duplicate member names are refused (PyJWT keeps the last)",
    "duplicate/payload-sub": "duplicate member names are refused (PyJWT keeps the last)",
    "duplicate/payload-exp-expired-then-valid": "duplicate member names are refused (PyJWT keeps the last)",
    "duplicate/payload-aud-wrong-then-right": "duplicate member names are refused (PyJWT keeps the last)",
    "non-object/header-utf16": "JSON must be UTF-8 (RFC 8259 section 8.1); PyJWT's json.loads(bytes) guesses UTF-16",
    "non-object/payload-utf16-le": "JSON must be UTF-8 (RFC 8259 section 8.1); PyJWT's json.loads(bytes) guesses UTF-16",
    "non-object/payload-utf8-bom": "JSON must not start with a BOM (RFC 8259 section 8.1); PyJWT strips it",
    # base64url: RFC 7515 section 2 says base64url "with all trailing '=' characters omitted".
    # (Padding inside the token, after the header or payload, is not RFC 6750 b64token syntax, so
    # the reference refuses those before PyJWT sees them.)
    "base64/signature-padded": "padding is refused in every segment (RFC 7515 section 2); PyJWT accepts it",
    # size and depth limits, checked before decoding
    "size/valid-one-byte-over": "the token is capped at JWT_MAX_TOKEN_BYTES (8192) before any decoding",
    "size/valid-100kb": "the token is capped at JWT_MAX_TOKEN_BYTES (8192) before any decoding",
    "nesting/header-arrays-20-deep-signed": "JSON nested deeper than 16 is refused before decoding",
    "nesting/payload-arrays-500-deep-signed": "JSON nested deeper than 16 is refused before decoding",
    "nesting/payload-depth-17-signed": "JSON nested deeper than 16 is refused before decoding",
}

#: The battery must keep at least this many cases.
CASES_MINIMUM = 150


def assert_agrees(case: Case, *, accepted: bool, pyjwt_accepted: bool) -> None:
    """Fail when the project accepts what PyJWT refuses, or disagrees in a way STRICTER does not explain."""
    if accepted and not pyjwt_accepted:
        raise AssertionError(f"{case.id}: the project ACCEPTS a token PyJWT refuses ({case.config})")
    if pyjwt_accepted and not accepted and case.id not in STRICTER:
        raise AssertionError(f"{case.id}: the project refuses a token PyJWT accepts; if that is deliberate, "
                             "list the case in jwt_cases.STRICTER with the reason")
    if case.id in STRICTER and accepted == pyjwt_accepted:
        raise AssertionError(f"{case.id}: listed in jwt_cases.STRICTER but both sides now agree "
                             f"({'accept' if accepted else 'refuse'}); remove the entry")

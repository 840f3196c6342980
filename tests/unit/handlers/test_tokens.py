"""common.tokens: the JWT verifier, cross-checked against PyJWT-signed tokens."""
from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

KEY = "unit-test-key-0123456789abcdef0123456789"
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def rsa_pair():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private, private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def verifier_factory():
    from common.tokens import JwtVerifier

    def build(algorithms=("HS256",), public_pem="", leeway_s=30):
        return JwtVerifier(algorithms=algorithms, issuer="iss", audience="aud", leeway_s=leeway_s,
                           max_token_bytes=4096, hs256_key=lambda: KEY.encode(), rs256_public_key_pem=public_pem,
                           clock=lambda: NOW)
    return build


def claims(**overrides):
    body = {"sub": "u1", "iss": "iss", "aud": "aud", "iat": NOW, "exp": NOW + 60}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_accepts_what_pyjwt_accepts(verifier_factory, rsa_pair):
    private, public_pem = rsa_pair
    verifier = verifier_factory(("HS256", "RS256"), public_pem)
    for token in (jwt.encode(claims(), KEY, "HS256"), jwt.encode(claims(), private, "RS256")):
        expected = jwt.decode(token, KEY if "HS256" in jwt.get_unverified_header(token)["alg"] else private.public_key(),
                              algorithms=["HS256", "RS256"], audience="aud", issuer="iss",
                              options={"verify_exp": False, "verify_iat": False})
        assert verifier.verify(token) == expected


@pytest.mark.parametrize("overrides, reason", [
    ({"exp": NOW - 31}, "expired"),
    ({"nbf": NOW + 31}, "not_yet_valid"),
    ({"iat": NOW + 31}, "issued_in_future"),
    ({"iss": "other"}, "wrong_issuer"),
    ({"aud": ["x", "y"]}, "wrong_audience"),
    ({"aud": None}, "wrong_audience"),
    ({"sub": ""}, "no_subject"),
    ({"exp": True}, "bad_claim"),
])
def test_claim_failures_name_their_reason(verifier_factory, overrides, reason):
    from common.tokens import TokenRejected

    with pytest.raises(TokenRejected) as raised:
        verifier_factory().verify(jwt.encode(claims(**overrides), KEY, "HS256"))
    assert raised.value.reason.value == reason


@pytest.mark.parametrize("overrides", [{"exp": NOW - 29}, {"nbf": NOW + 29}, {"iat": NOW + 29}])
def test_leeway_absorbs_small_clock_skew(verifier_factory, overrides):
    assert verifier_factory().verify(jwt.encode(claims(**overrides), KEY, "HS256"))["sub"] == "u1"


def test_rs256_token_is_refused_when_only_hs256_is_configured(verifier_factory, rsa_pair):
    from common.tokens import TokenRejected

    with pytest.raises(TokenRejected, match="algorithm_not_allowed|not allowed"):
        verifier_factory().verify(jwt.encode(claims(), rsa_pair[0], "RS256"))


def test_a_non_rsa_public_key_is_refused_at_init(verifier_factory):
    public_pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(ValueError, match="RSA"):
        verifier_factory(("RS256",), public_pem)


@pytest.mark.parametrize("value, reason", [
    (None, "missing_token"), ("  ", "missing_token"), ("Token abc", "missing_bearer_prefix"),
    ("Bearer", "missing_bearer_prefix"), ("Bearer " + "x" * 5000, "oversized_token"), (42, "missing_token"),
])
def test_bearer_prefix_and_size_are_checked_first(value, reason):
    from common.tokens import TokenRejected, bearer_token

    with pytest.raises(TokenRejected) as raised:
        bearer_token(value, 4096)
    assert raised.value.reason.value == reason

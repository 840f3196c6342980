"""common.tokens: the JWT verifier, cross-checked against PyJWT-signed tokens."""
from __future__ import annotations

import base64
import json

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


# --- strictness beyond the claims: what the differential battery found ------------------------

def _reason(verifier, token):
    from common.tokens import TokenRejected

    with pytest.raises(TokenRejected) as raised:
        verifier.verify(token)
    return raised.value.reason.value


def test_a_token_is_expired_at_exactly_exp_plus_leeway(verifier_factory):
    # GIVEN a token whose exp plus the 30 s leeway is exactly now, and one a second later
    verifier = verifier_factory()
    # WHEN they are verified, THEN the first is expired (RFC 7519: now >= exp) and the second is not
    assert _reason(verifier, jwt.encode(claims(exp=NOW - 30), KEY, "HS256")) == "expired"
    assert verifier.verify(jwt.encode(claims(exp=NOW - 29), KEY, "HS256"))["sub"] == "u1"


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 399, '"1800000060"', "true",
                                 "-1", "null", "[1800000060]"])
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_numeric_dates_must_be_finite_json_numbers_in_range(verifier_factory, claim, raw):
    # GIVEN a correctly signed token whose time claim is not a sane NumericDate
    body = json.dumps({k: v for k, v in claims().items() if k != claim})[:-1] + f', "{claim}": {raw}}}'
    token = _signed('{"alg": "HS256"}', body)
    # WHEN it is verified, THEN it is refused with a reason, not an exception of another kind
    assert _reason(verifier_factory(), token) in ("bad_claim", "malformed_token")


def test_every_other_spelling_of_a_signature_is_refused(verifier_factory):
    # GIVEN a valid HS256 token and the three other last characters that decode to the same bytes
    token = jwt.encode(claims(), KEY, "HS256")
    head, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    base = alphabet.index(signature[-1]) & ~0b11
    variants = [head + "." + signature[:-1] + alphabet[base | low] for low in (1, 2, 3)]
    assert all(base64.urlsafe_b64decode(v.rpartition(".")[2] + "=") == base64.urlsafe_b64decode(signature + "=")
               for v in variants)
    # WHEN they are verified, THEN only the canonical one passes
    verifier = verifier_factory()
    assert verifier.verify(token)["sub"] == "u1"
    assert {_reason(verifier, variant) for variant in variants} == {"malformed_token"}
    assert _reason(verifier, token + "=") == "malformed_token"
    assert _reason(verifier, head + "." + signature.replace("-", "+").replace("_", "/") + "+") == "malformed_token"


def test_deep_nesting_is_refused_before_the_decoder_runs(verifier_factory, monkeypatch):
    # GIVEN an unsigned header nested 1,000 deep (about 1.4 KB of JSON), and a decoder that must not be reached
    import common.tokens as tokens

    header = _b64(('{"alg":"HS256","x":' + "[" * 1000 + "]" * 1000 + "}").encode())
    monkeypatch.setattr(tokens.json, "loads", lambda *a, **k: pytest.fail("the JSON decoder ran"))
    # WHEN it is verified, THEN it is refused as malformed
    assert _reason(verifier_factory(), f"{header}.e30.c2ln") == "malformed_token"


@pytest.mark.parametrize("text, too_deep", [
    ('{"a":[[[1]]]}', False),
    ('{"a":"' + "[" * 100 + '"}', False),                 # brackets inside a string do not count
    ('{"a":"\\"' + "[" * 100 + '"}', False),             # nor after an escaped quote
    ('{"a":"\\\\",' + '"b":' + "[" * 20 + "]" * 20 + "}", True),  # an escaped backslash closes nothing early
    ("[" * 17 + "]" * 17, True),
    ("[" * 16 + "]" * 16, False),
    ("[]" * 100, False),                                   # many brackets, never deep
])
def test_nesting_depth_is_measured_without_recursion(text, too_deep):
    from common.tokens import MAX_JSON_DEPTH, _too_deep

    assert MAX_JSON_DEPTH == 16
    assert _too_deep(text, MAX_JSON_DEPTH) is too_deep


@pytest.mark.parametrize("header, reason", [
    ({"alg": "HS256", "b64": True}, "bad_header"),
    ({"alg": "HS256", "b64": False, "crit": ["b64"]}, "unsupported_critical_header"),
    ({"alg": "HS256", "kid": 7}, "bad_header"),
])
def test_unsupported_or_malformed_header_parameters_are_refused(verifier_factory, header, reason):
    token = _signed(json.dumps(header), json.dumps(claims()))  # PyJWT will not write these headers
    assert _reason(verifier_factory(), token) == reason


@pytest.mark.parametrize("text", ['{"alg":"HS256","alg":"HS256"}', '{"alg":"HS256","x":NaN}'])
def test_duplicate_names_and_nan_are_not_json(verifier_factory, text):
    assert _reason(verifier_factory(), f"{_b64(text.encode())}.e30.c2ln") == "malformed_token"


def test_an_hs256_key_under_32_bytes_is_refused():
    # GIVEN a verifier whose secret holds a 31-byte key, and a token correctly signed with it
    from common.tokens import JwtVerifier

    short = "k" * 31
    verifier = JwtVerifier(algorithms=("HS256",), issuer="iss", audience="aud", hs256_key=lambda: short.encode(),
                           clock=lambda: NOW)
    # WHEN it is verified, THEN it is refused for the key, whatever the token
    assert _reason(verifier, _signed('{"alg":"HS256"}', json.dumps(claims()), key=short)) == "key_misconfigured"


def test_an_rsa_key_under_2048_bits_is_refused_at_init(verifier_factory):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(ValueError, match="1024-bit.*2048"):
        verifier_factory(("RS256",), small)


@pytest.mark.parametrize("value, token", [
    ("bearer abc", "abc"), ("Bearer   abc", "abc"), ("\tBearer abc \t", "abc"), ("Bearer abc\n", "abc\n"),
])
def test_bearer_scheme_is_case_insensitive_and_only_spaces_and_tabs_are_trimmed(value, token):
    from common.tokens import bearer_token

    assert bearer_token(value, 4096) == token


@pytest.mark.parametrize("value", ["Bearer\tabc", "Bearer\u00a0abc", "Bearerabc", "B\u00e9arer abc"])
def test_bearer_needs_a_space_after_the_scheme(value):
    from common.tokens import TokenRejected, bearer_token

    with pytest.raises(TokenRejected, match="missing_bearer_prefix"):
        bearer_token(value, 4096)


def test_mutated_tokens_only_ever_raise_token_rejected(verifier_factory, rsa_pair):
    # GIVEN 3,000 deterministic mutations (flips, cuts, insertions) of valid HS256 and RS256 tokens
    import random

    from common.tokens import TokenRejected

    private, public_pem = rsa_pair
    verifier = verifier_factory(("HS256", "RS256"), public_pem)
    seeds = [jwt.encode(claims(), KEY, "HS256"), jwt.encode(claims(), private, "RS256")]
    rng = random.Random(20260511)
    alphabet = "ABCxyz019-_+/=.{}[]\"\\ \x00\u00e9"
    refused = accepted = 0
    for _ in range(3000):
        seed = rng.choice(seeds)
        token = list(seed)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(token))
            action = rng.random()
            if action < 0.4:
                token[position] = rng.choice(alphabet)
            elif action < 0.7:
                del token[position]
            else:
                token.insert(position, rng.choice(alphabet))
        text = "".join(token)
        # WHEN each is verified, THEN it is accepted or refused with TokenRejected; nothing else escapes
        try:
            verifier.verify(text)
        except TokenRejected:
            refused += 1
            continue
        # AND a token is accepted only when its header, claims and signature still decode to the
        # seed's own bytes (a mutation base64 ignores, such as spare bits in the last character)
        accepted += 1
        assert _segments(text) == _segments(seed), (seed, text)
    assert refused > 2900, (refused, accepted)


def _segments(token: str) -> tuple[bytes, ...] | None:
    """The three segments' decoded bytes, by the standard library's lenient base64url; None if not three."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return tuple(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in parts)
    except ValueError:
        return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _signed(header_text: str, body_text: str, key: str = KEY) -> str:
    """An HS256 token over exactly this header and body text (what PyJWT will not write)."""
    import hashlib
    import hmac

    signing_input = f"{_b64(header_text.encode())}.{_b64(body_text.encode())}"
    return f"{signing_input}.{_b64(hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest())}"

"""common.tokens against PyJWT, case by case: never accept what PyJWT refuses, never raise.

The cases and the reference decision live in ``tests/functional/jwt_cases.py`` (shared with the
handler-level variant, ``tests/functional/handlers/test_auth_handler_differential.py``). Each case
is an Authorization value: ``bearer_token`` then ``JwtVerifier.verify`` decide it here, with the
settings the handler uses and the clock fixed at ``jwt_cases.NOW``.
"""
from __future__ import annotations

import jwt_cases
import pytest
from jwt_cases import CASES_MINIMUM, CONFIGS, STRICTER, Case, pyjwt_accepts

CASES = jwt_cases.build_cases()


@pytest.fixture(scope="module")
def verifiers():
    from common.tokens import JwtVerifier

    return {name: JwtVerifier(algorithms=config.algorithms, issuer=jwt_cases.ISSUER, audience=jwt_cases.AUDIENCE,
                              leeway_s=jwt_cases.LEEWAY_S, max_token_bytes=jwt_cases.MAX_TOKEN_BYTES,
                              hs256_key=lambda key=config.hs256_key: key.encode("utf-8"),
                              rs256_public_key_pem=config.public_key_pem, clock=lambda: jwt_cases.NOW)
            for name, config in CONFIGS.items()}


def project_accepts(case: Case, verifiers) -> bool:
    """Whether common.tokens accepts the case; any exception but TokenRejected propagates (a crash)."""
    from common.tokens import TokenRejected, bearer_token

    try:
        verifiers[case.config].verify(bearer_token(case.authorization, jwt_cases.MAX_TOKEN_BYTES))
    except TokenRejected:
        return False
    return True


def test_the_battery_is_large_and_well_formed():
    # GIVEN the generated cases
    ids = [case.id for case in CASES]
    # THEN there are enough of them, each id is unique, and every STRICTER entry names a case
    assert len(CASES) >= CASES_MINIMUM
    assert len(ids) == len(set(ids))
    assert set(STRICTER) <= set(ids), sorted(set(STRICTER) - set(ids))
    # AND the battery is not lopsided: both sides accept a fair share of valid tokens
    assert sum(pyjwt_accepts(case) for case in CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_verifier_agrees_with_pyjwt(case, verifiers):
    # GIVEN one crafted Authorization value and PyJWT's decision on it with the same settings
    expected = pyjwt_accepts(case)
    # WHEN the project's verifier decides it (an exception other than TokenRejected fails the test)
    accepted = project_accepts(case, verifiers)
    # THEN it never accepts what PyJWT refuses; it refuses what PyJWT accepts only where STRICTER says why
    jwt_cases.assert_agrees(case, accepted=accepted, pyjwt_accepted=expected)

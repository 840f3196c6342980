"""common.httpclient: full-jitter backoff and the circuit breaker, with a fake clock."""
from __future__ import annotations

import random

import pytest


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_full_jitter_stays_within_the_exponential_envelope():
    from common.httpclient import Backoff

    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(7))
    for attempt in range(8):
        bound = min(1.0, 0.1 * 2 ** attempt)
        delays = [backoff.delay_s(attempt) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8 and min(delays) < bound * 0.2  # spread over the whole range


def test_breaker_opens_after_threshold_then_half_opens_and_closes():
    from common.errors import CircuitOpenError
    from common.httpclient import BreakerState, CircuitBreaker

    clock = FakeClock()
    breaker = CircuitBreaker("t", failure_threshold=3, reset_timeout_s=10, clock=clock)
    # GIVEN three consecutive failures
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    # THEN it is open and fails fast
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    # WHEN the reset timeout passes, one trial goes through (and only one)
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    # AND a failed trial opens it again; a successful one closes it
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 10
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0


def test_a_success_resets_the_failure_count():
    from common.httpclient import BreakerState, CircuitBreaker

    breaker = CircuitBreaker("t", failure_threshold=3, clock=FakeClock())
    for outcome in ("f", "f", "s", "f", "f"):
        breaker.record_failure() if outcome == "f" else breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_breakers_are_process_wide_by_name():
    from common import httpclient

    httpclient.reset_breakers()
    assert httpclient.breaker("webhook") is httpclient.breaker("webhook")
    assert httpclient.breaker("webhook") is not httpclient.breaker("other")


def test_client_retries_then_raises_and_never_sleeps_past_the_deadline():
    from common.errors import UpstreamError
    from common.httpclient import Backoff, CircuitBreaker, HttpClient, TargetPolicy

    sleeps = []
    client = HttpClient(CircuitBreaker("t", failure_threshold=100), timeout_s=0.2, max_attempts=4,
                        backoff=Backoff(base_s=1.0, cap_s=1.0, rng=random.Random(1)), sleep=sleeps.append,
                        policy=TargetPolicy(allow_private=True))
    # GIVEN a closed port (connection refused) and plenty of time: all attempts are made
    with pytest.raises(UpstreamError, match="4 attempt"):
        client.post_json("http://127.0.0.1:1/x", {"a": 1})
    assert len(sleeps) == 3
    # GIVEN only 0.01 s left: no backoff sleep longer than that
    sleeps.clear()
    with pytest.raises(UpstreamError):
        client.post_json("http://127.0.0.1:1/x", {"a": 1}, time_left_s=lambda: 0.01)
    assert sleeps == []


def test_error_messages_never_carry_the_url_path_or_query():
    from common.errors import UpstreamError
    from common.httpclient import CircuitBreaker, HttpClient, TargetPolicy

    client = HttpClient(CircuitBreaker("t"), timeout_s=0.2, max_attempts=1, policy=TargetPolicy(allow_private=True))
    with pytest.raises(UpstreamError) as raised:
        client.post_json("http://127.0.0.1:1/hook?token=secret", {})
    assert "secret" not in str(raised.value) and "127.0.0.1:1" in str(raised.value)

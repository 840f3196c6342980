"""Outbound HTTP for external services: timeouts, exponential backoff with full jitter, circuit breaker.

* :class:`Backoff` computes ``sleep = uniform(0, min(cap_s, base_s * 2**attempt))`` ("full
  jitter", AWS Architecture Blog, *Exponential Backoff and Jitter*), so retrying clients spread out.
* :class:`CircuitBreaker` opens after ``failure_threshold`` consecutive failures, fails fast
  while open, lets one trial call through after ``reset_timeout_s`` (half-open) and closes on its
  success. Breakers live in a module-level registry (:func:`breaker`), so their state survives
  warm invocations of the same execution environment.
* :class:`HttpClient` sends JSON with urllib (stdlib only), retries timeouts, connection errors,
  429 and 5xx, never retries other 4xx, and never sleeps past the caller's deadline.
"""
from __future__ import annotations

import enum
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.errors import CircuitOpenError, UpstreamError, UpstreamRejected, ValidationError


class BreakerState(str, enum.Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class Backoff:
    """Exponential backoff with full jitter; delays in seconds."""

    base_s: float = 0.1
    cap_s: float = 2.0
    rng: random.Random = field(default_factory=random.Random)

    def delay_s(self, attempt: int) -> float:
        """Sleep before retry number ``attempt`` (0-based): uniform in [0, min(cap, base * 2**attempt)]."""
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * (2 ** attempt)))


class CircuitBreaker:
    """Consecutive-failure circuit breaker; thread-safe, clock injectable (seconds, monotonic)."""

    def __init__(self, name: str, failure_threshold: int = 5, reset_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after_s(self) -> float:
        """Seconds until the breaker lets a trial call through (0 when it does now)."""
        with self._lock:
            if self._state is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))

    def before_call(self) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go out now."""
        with self._lock:
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self.reset_timeout_s:
                    raise CircuitOpenError(f"circuit {self.name!r} is open; failing fast",
                                           retry_after_s=round(self.reset_timeout_s - (self._clock() - self._opened_at), 3))
                self._state = BreakerState.HALF_OPEN
                self._trial_in_flight = False
            if self._state is BreakerState.HALF_OPEN:
                if self._trial_in_flight:
                    raise CircuitOpenError(f"circuit {self.name!r} is half-open with a trial call in flight")
                self._trial_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_in_flight = False
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()

    def release_trial(self) -> None:
        """Give back a half-open trial slot that was taken but never used for a call."""
        with self._lock:
            self._trial_in_flight = False

    def reset(self) -> None:
        """Back to closed (tests, or an operator)."""
        self.record_success()


_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker(name: str, **options: Any) -> CircuitBreaker:
    """The process-wide breaker called ``name``, created with ``options`` on first use."""
    with _BREAKERS_LOCK:
        if name not in _BREAKERS:
            _BREAKERS[name] = CircuitBreaker(name, **options)
        return _BREAKERS[name]


def reset_breakers() -> None:
    """Forget every breaker (tests)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()


@dataclass
class Response:
    """An HTTP response: status, headers (lower-case names) and body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class HttpClient:
    """JSON over HTTP with per-attempt timeouts, bounded retries and a circuit breaker."""

    def __init__(self, circuit: CircuitBreaker, timeout_s: float = 3.0, max_attempts: int = 3,
                 backoff: Backoff | None = None, sleep: Callable[[float], None] = time.sleep):
        self.circuit = circuit
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._opener = urllib.request.build_opener()
        self.attempts_made = 0

    def post_json(self, url: str, payload: Any, headers: dict[str, str] | None = None,
                  time_left_s: Callable[[], float] | None = None) -> Response:
        """POST ``payload`` as JSON; return the 2xx response or raise a :mod:`common.errors` error.

        ``time_left_s`` (optional) says how many seconds the caller can still spend; no attempt
        starts and no backoff sleeps beyond it.
        """
        body = json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")
        all_headers = {"Content-Type": "application/json", "User-Agent": "lambda-workbook/1"}
        all_headers.update(headers or {})
        last_problem = "no attempt made"
        for attempt in range(self.max_attempts):
            self.circuit.before_call()
            timeout_s = self.timeout_s
            if time_left_s is not None:
                timeout_s = min(timeout_s, time_left_s())
                if timeout_s <= 0.05:
                    self.circuit.release_trial()
                    raise UpstreamError(f"no time left to call {_host(url)}; last problem: {last_problem}")
            self.attempts_made += 1
            try:
                response = self._send(url, body, all_headers, timeout_s)
            except (ValueError, UnicodeError) as error:
                # http.client refused to build the request (a header with CR/LF or outside Latin-1, a
                # malformed URL): nothing was sent, so give back a half-open trial slot and say so.
                self.circuit.release_trial()
                raise ValidationError(f"request to {_host(url)} cannot be sent: {type(error).__name__}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
                self.circuit.record_failure()
                last_problem = _describe(error)
            else:
                if 200 <= response.status < 300:
                    self.circuit.record_success()
                    return response
                if response.status in _RETRYABLE_STATUS:
                    self.circuit.record_failure()
                    last_problem = f"HTTP {response.status}"
                else:
                    # The service is up and answered: the request itself is wrong. Retrying won't help,
                    # and it is no reason to open the breaker.
                    self.circuit.record_success()
                    raise UpstreamRejected(f"{_host(url)} rejected the request with HTTP {response.status}",
                                           status=response.status)
            if attempt + 1 < self.max_attempts:
                delay_s = self.backoff.delay_s(attempt)
                if time_left_s is not None and delay_s >= time_left_s():
                    break
                self._sleep(delay_s)
        raise UpstreamError(f"{_host(url)} failed after {attempt + 1} attempt(s): {last_problem}",
                            attempts=attempt + 1)

    def _send(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Response:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=timeout_s) as raw:
                return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, {k.lower(): v for k, v in (error.headers or {}).items()}, error.read())


def _host(url: str) -> str:
    """Scheme and host of a URL, without path or query (which may hold tokens)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        error = reason
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timeout"
    return type(error).__name__


__all__ = ["Backoff", "BreakerState", "CircuitBreaker", "HttpClient", "Response", "breaker", "reset_breakers"]

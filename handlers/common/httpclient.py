"""Outbound HTTP for external services: timeouts, exponential backoff with full jitter, circuit breaker.

* :class:`Backoff` computes ``sleep = uniform(0, min(cap_s, base_s * 2**attempt))`` ("full
  jitter", AWS Architecture Blog, *Exponential Backoff and Jitter*), so retrying clients spread out.
* :class:`CircuitBreaker` opens after ``failure_threshold`` consecutive failures, fails fast
  while open, lets one trial call through after ``reset_timeout_s`` (half-open) and closes on its
  success. Breakers live in a module-level registry (:func:`breaker`), so their state survives
  warm invocations of the same execution environment.
* :class:`HttpClient` sends JSON with http.client (stdlib only), retries timeouts, connection errors,
  429 and 5xx, never retries other 4xx, and never sleeps past the caller's deadline.
* :class:`TargetPolicy` decides which URLs the client may call. It never follows a redirect (a 3xx
  is a failed attempt: following one would carry the bearer token to another host, and turn the
  POST into a GET whose 200 proves nothing). Only ``https://``; link-local targets (the instance
  metadata service) never; loopback and private targets only when ``allow_private`` says so (the
  local environment's webhook sink on ``http://127.0.0.1``). The host is resolved once per attempt,
  every address it resolves to is checked, and the connection goes to the address that was checked
  (no second lookup that DNS rebinding could answer differently).
"""
from __future__ import annotations

import enum
import http.client
import ipaddress
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from common.errors import CircuitOpenError, TargetRefused, UpstreamError, UpstreamRejected, ValidationError


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
#: At most this much of a response body is read (a webhook's answer is a few bytes; nothing more is used).
MAX_RESPONSE_BYTES = 1024 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A vetted URL: where to connect (``address``, checked) and what to ask for (host, port, path)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class TargetPolicy:
    """Which URLs may be called: ``https://`` to public addresses; loopback/private only if allowed.

    ``allow_private`` (params ``webhook.allow_private_targets``, for the local environment and
    tests) admits loopback and private addresses, and plain ``http://`` to them only. Link-local
    addresses (169.254.0.0/16, fe80::/10: the instance metadata service), multicast and unspecified
    addresses are refused whatever it says. ``resolve`` is :func:`socket.getaddrinfo`'s signature.
    """

    allow_private: bool = False
    resolve: Callable[..., list] = socket.getaddrinfo

    def parse(self, url: str) -> SplitResult:
        """The URL split, or :class:`TargetRefused` for a scheme, userinfo or host it may not use."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
        except ValueError:
            raise TargetRefused(f"webhook URL {_host(url)!r} is malformed (host or port)") from None
        if parts.scheme not in ("https", "http"):
            raise TargetRefused(f"webhook URL scheme {parts.scheme!r} refused: use https://")
        if parts.scheme == "http" and not self.allow_private:
            raise TargetRefused(f"{_host(url)}: plain http:// refused (the bearer token would travel in clear); "
                                "use https://")
        if not parts.hostname:
            raise TargetRefused(f"webhook URL {_host(url)!r} has no host")
        if "@" in parts.netloc:
            raise TargetRefused(f"webhook URL for {parts.hostname} carries user:password; put the credential "
                                "in webhook_token instead")
        return parts

    def vet(self, url: str) -> Target:
        """Resolve the URL's host and check every address; the first address is the one to connect to."""
        parts = self.parse(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = self.resolve(host, port, type=socket.SOCK_STREAM)
        except (UnicodeError, OSError) as error:
            raise socket.gaierror(f"cannot resolve {host}: {error}") from None
        addresses = [info[4][0] for info in infos]
        if not addresses:
            raise socket.gaierror(f"cannot resolve {host}: no address")
        for text in addresses:
            address = _unmapped(ipaddress.ip_address(text.split("%", 1)[0]))
            problem = self._problem(address)
            if problem:
                raise TargetRefused(f"{parts.scheme}://{parts.netloc}: {host} resolves to {address}, {problem}")
            if parts.scheme == "http" and address.is_global:
                raise TargetRefused(f"{parts.scheme}://{parts.netloc}: plain http:// to a public address refused; "
                                    "use https://")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return Target(parts.scheme, host, port, path, addresses[0])

    def _problem(self, address: Address) -> str | None:
        if address.is_link_local:
            return "a link-local address (instance metadata lives there); refused always"
        if address.is_multicast or address.is_unspecified:
            return "not a unicast host address; refused always"
        if address.is_global:
            return None
        if self.allow_private:
            return None
        kind = "loopback" if address.is_loopback else "private or reserved"
        return (f"a {kind} address; refused (params webhook.allow_private_targets: true admits it, "
                "for the local environment and tests)")


def _unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it stands for."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class HttpClient:
    """JSON over HTTP with per-attempt timeouts, bounded retries and a circuit breaker."""

    def __init__(self, circuit: CircuitBreaker, timeout_s: float = 3.0, max_attempts: int = 3,
                 backoff: Backoff | None = None, sleep: Callable[[float], None] = time.sleep,
                 policy: TargetPolicy | None = None, ssl_context: ssl.SSLContext | None = None):
        self.circuit = circuit
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff()
        self.policy = policy or TargetPolicy()
        self._sleep = sleep
        self._ssl_context = ssl_context
        self.attempts_made = 0

    def post_json(self, url: str, payload: Any, headers: dict[str, str] | None = None,
                  time_left_s: Callable[[], float] | None = None) -> Response:
        """POST ``payload`` as JSON; return the 2xx response or raise a :mod:`common.errors` error.

        ``time_left_s`` (optional) says how many seconds the caller can still spend; no attempt
        starts and no backoff sleeps beyond it.
        """
        self.policy.parse(url)  # a refused scheme or host fails before the breaker is touched
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
                response = self._send(self.policy.vet(url), body, all_headers, timeout_s)
            except TargetRefused:
                self.circuit.release_trial()
                raise
            except ssl.SSLError as error:   # also a ValueError (certificate checks): the service's fault
                self.circuit.record_failure()
                last_problem = type(error).__name__
            except (ValueError, UnicodeError, http.client.InvalidURL) as error:
                # http.client refused to build the request (a header with CR/LF or outside Latin-1, a
                # malformed URL): nothing was sent, so give back a half-open trial slot and say so.
                self.circuit.release_trial()
                raise ValidationError(f"request to {_host(url)} cannot be sent: {type(error).__name__}") from None
            except (TimeoutError, ConnectionError, OSError, http.client.HTTPException) as error:
                self.circuit.record_failure()
                last_problem = _describe(error)
            else:
                if 200 <= response.status < 300:
                    self.circuit.record_success()
                    return response
                elif 300 <= response.status < 400:
                    # Never followed: the token would go to the Location's host, and a 303/302 turns the
                    # POST into a GET whose 200 says nothing about the notification. A failed delivery.
                    self.circuit.record_failure()
                    location = _host(response.headers.get("location", "")) or "no Location"
                    last_problem = f"HTTP {response.status} redirect to {location} refused (redirects are not followed)"
                elif response.status in _RETRYABLE_STATUS:
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

    def _send(self, target: Target, body: bytes, headers: dict[str, str], timeout_s: float) -> Response:
        """One POST to the vetted address; the Host header and TLS name are the URL's host."""
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            connection = http.client.HTTPSConnection(target.host, target.port, timeout=timeout_s, context=context)
        else:
            connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout_s)

        def connect_to_vetted(address: tuple[str, int], timeout: float | None = None,
                              source_address: tuple[str, int] | None = None) -> socket.socket:
            return socket.create_connection((target.address, address[1]), timeout, source_address)

        connection._create_connection = connect_to_vetted  # type: ignore[attr-defined]
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            raw = connection.getresponse()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read(MAX_RESPONSE_BYTES))
        finally:
            connection.close()


def _host(url: str) -> str:
    """Scheme and host of a URL, without userinfo, path or query (which may hold tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed URL>"
    if not parts.scheme and not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        error = reason
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(error, socket.gaierror):
        return f"DNS: {error}"
    return type(error).__name__


__all__ = ["Backoff", "BreakerState", "CircuitBreaker", "HttpClient", "Response", "Target", "TargetPolicy", "breaker",
           "reset_breakers"]

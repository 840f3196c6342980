"""Running Logs Insights queries: concurrently within a limit, retried with backoff when throttled.

``run_queries(client, queries)`` starts each ``InsightsQuery`` (StartQuery), polls GetQueryResults
until it completes, and returns its rows as dicts (``{field: value}``, values as Insights gives
them: strings). At most ``concurrency`` queries run at once (the account's quota of concurrent
Insights queries is shared with everyone else's; the default stays well under it). A
``LimitExceededException`` (too many concurrent queries) or ``ThrottlingException`` on StartQuery or
GetQueryResults is retried after an exponential backoff with jitter, up to ``max_attempts``; then
the error is a ``LogsError`` that says what to do. ``InsightsStats`` counts the calls, rows and
bytes each run took.
"""
from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from workbook.errors import WorkbookError

__all__ = ["InsightsError", "InsightsQuery", "InsightsStats", "RETRIED_CODES", "run_queries"]

#: Error codes retried with backoff: too many concurrent queries, or the request rate.
RETRIED_CODES = frozenset({"LimitExceededException", "ThrottlingException", "TooManyRequestsException"})
#: Queries in flight at once, by default (the account-wide quota is 30 or more; others query too).
DEFAULT_CONCURRENCY = 10
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_S = 1.0
DEFAULT_MAX_BACKOFF_S = 30.0


class InsightsError(WorkbookError):
    """A Logs Insights query failed; the message names the query and what to check."""


@dataclass(frozen=True)
class InsightsQuery:
    """One query: its log groups, its time range in epoch seconds, its text, and a label for messages."""

    log_groups: tuple[str, ...]
    start_s: int
    end_s: int
    query: str
    label: str = ""


@dataclass
class InsightsStats:
    """What a run of queries cost: API calls by operation, result rows and response bytes."""

    start_query: int = 0
    get_query_results: int = 0
    retries: int = 0
    rows: int = 0
    bytes: int = 0
    batches: list[int] = field(default_factory=list)   # queries per run_queries call: they run concurrently
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def calls(self) -> int:
        return self.start_query + self.get_query_results

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "start_query": self.start_query, "get_query_results": self.get_query_results,
                "retries": self.retries, "rows": self.rows, "bytes": self.bytes, "batches": list(self.batches)}


def _code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def _with_backoff(call: Callable[[], Any], what: str, stats: InsightsStats, *, max_attempts: int, backoff_s: float,
                  max_backoff_s: float, sleep: Callable[[float], None], rng: random.Random) -> Any:
    for attempt in range(1, max_attempts + 1):
        try:
            return call()
        except ClientError as exc:
            code = _code(exc)
            if code not in RETRIED_CODES:
                if code in ("AccessDeniedException", "AccessDenied"):
                    raise InsightsError(f"{what} was denied ({code}): grant logs:StartQuery and logs:GetQueryResults "
                                        "on the functions' log groups") from exc
                raise InsightsError(f"{what} failed: {code}: {exc.response.get('Error', {}).get('Message', '')}") from exc
            if attempt == max_attempts:
                raise InsightsError(f"{what} was still throttled ({code}) after {max_attempts} attempts: run fewer "
                                    "queries at once (concurrency) or later") from exc
            stats.add(retries=1)
            # Full jitter: a random wait up to the exponential step, so throttled callers spread out.
            sleep(rng.uniform(0.5, 1.0) * min(max_backoff_s, backoff_s * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")


def _run_one(client: Any, query: InsightsQuery, stats: InsightsStats, *, poll_s: float, timeout_s: float,
             sleep: Callable[[float], None], clock: Callable[[], float], retry: dict[str, Any]) -> list[dict[str, str]]:
    what = f"Logs Insights query {query.label or query.query.splitlines()[0]!r} on {len(query.log_groups)} log group(s)"

    def start() -> str:
        stats.add(start_query=1)
        return client.start_query(logGroupNames=list(query.log_groups), startTime=int(query.start_s),
                                  endTime=int(query.end_s), queryString=query.query)["queryId"]

    query_id = _with_backoff(start, what, stats, sleep=sleep, **retry)
    deadline = clock() + timeout_s
    while True:
        def results() -> dict:
            stats.add(get_query_results=1)
            return client.get_query_results(queryId=query_id)

        answer = _with_backoff(results, what, stats, sleep=sleep, **retry)
        status = answer.get("status")
        if status == "Complete":
            rows = answer.get("results", [])
            stats.add(rows=len(rows), bytes=len(json.dumps(rows, separators=(",", ":"))))
            return [{f["field"]: f.get("value") for f in row} for row in rows]
        if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
            raise InsightsError(f"{what} ended with status {status} (query id {query_id})")
        if clock() > deadline:
            raise InsightsError(f"{what} did not finish in {timeout_s:.0f} s (query id {query_id}): shorten the window")
        sleep(poll_s)


def run_queries(client: Any, queries: Sequence[InsightsQuery], *, concurrency: int = DEFAULT_CONCURRENCY,
                poll_s: float = 1.0, timeout_s: float = 900.0, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                backoff_s: float = DEFAULT_BACKOFF_S, max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
                sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                stats: InsightsStats | None = None, seed: int | None = None) -> list[list[dict[str, str]]]:
    """Each query's rows (``[{field: value}]``), in the order of ``queries``; ``stats`` counts what it cost."""
    if concurrency < 1:
        raise ValueError(f"concurrency {concurrency} must be at least 1")
    for q in queries:
        if not 1 <= len(q.log_groups) <= 50:
            raise ValueError(f"a Logs Insights query takes 1 to 50 log groups, {q.label!r} has {len(q.log_groups)}")
        if q.end_s < q.start_s:
            raise ValueError(f"query {q.label!r}: the time range is reversed ({q.start_s} s after {q.end_s} s)")
    stats = stats if stats is not None else InsightsStats()
    stats.batches.append(len(queries))
    retry = dict(max_attempts=max_attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s, rng=random.Random(seed))

    def one(q: InsightsQuery) -> list[dict[str, str]]:
        return _run_one(client, q, stats, poll_s=poll_s, timeout_s=timeout_s, sleep=sleep, clock=clock, retry=retry)

    if concurrency == 1 or len(queries) <= 1:
        return [one(q) for q in queries]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(queries)), thread_name_prefix="insights") as pool:
        return list(pool.map(one, queries))

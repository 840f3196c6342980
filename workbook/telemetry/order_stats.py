"""A few order statistics of a function's successful durations, in a constant number of rows.

The timeout rule reads only a handful of ranks (its bound, the two around the p99.9, the maximum),
but ``sort ... | limit k`` brings all ``k`` longest: about n / 1,000 rows. Past one query's 10,000
rows, ``fetch_ranks`` counts durations instead: a histogram per version and power-of-two bucket
(``insights_queries.histogram_query``) locates each wanted rank of the traffic in one bucket, and that
bucket's rows (``bucket_query``) give its exact value. A bucket too full to fetch is counted again at
a finer width (a histogram with more buckets than rows, at a coarser one), so the answer stays exact
with rows bounded by the limit per query.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbook.telemetry import insights_queries as iq
from workbook.telemetry.insights import InsightsQuery

__all__ = ["VERSIONS_PER_HISTOGRAM", "fetch_ranks"]

#: Versions a histogram is sized for: its buckets are at most the row limit / this.
VERSIONS_PER_HISTOGRAM = 4


@dataclass
class _Search:
    """Ranks (1 = the longest, among the traffic) still wanted in [low_ms, high_ms) of one function and format."""

    name: str
    group: str
    log_format: str
    low_ms: float | None
    high_ms: float | None
    width_ms: float
    wanted: dict[int, int] = field(default_factory=dict)     # rank -> rank within this range


def _width(span_ms: float) -> float:
    """A power-of-two bucket width that cuts ``span_ms`` in at most the row limit / VERSIONS_PER_HISTOGRAM buckets."""
    buckets = max(iq.INSIGHTS_ROW_LIMIT // VERSIONS_PER_HISTOGRAM, 1)
    return 2.0 ** math.ceil(math.log2(max(span_ms, 1e-6) / buckets))


def fetch_ranks(client: Any, searches: Sequence[tuple[str, str, str, float, Collection[int]]],
                traffic_versions: Callable[[str], set[str]], start_s: int, end_s: int,
                run: Callable[..., list]) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
    """The wanted ranks' durations per function: ``searches`` holds (function, log group, log format, the
    window's longest ms, ranks from the top among the traffic). Returns (values, problems)."""
    values: dict[str, dict[int, float]] = {}
    problems: dict[str, str] = {}
    pending = [_Search(name, group, fmt, None, None, _width(longest), {r: r for r in ranks})
               for name, group, fmt, longest, ranks in searches if ranks]
    while pending:
        queries = [InsightsQuery((s.group,), start_s, end_s, iq.histogram_query(s.log_format, s.width_ms, s.low_ms,
                                                                                s.high_ms), f"histogram {s.name}")
                   for s in pending]
        fetches, finer = [], []
        for search, rows in zip(pending, run(client, queries), strict=True):
            if len(rows) >= iq.INSIGHTS_ROW_LIMIT:       # more buckets than rows: count again, 16x coarser
                finer.append(_Search(search.name, search.group, search.log_format, search.low_ms, search.high_ms,
                                     search.width_ms * 16, search.wanted))
                continue
            located, per = _locate(search, rows, traffic_versions(search.name))
            for bucket, (all_rows, wanted) in located.items():
                low, high = bucket * search.width_ms, (bucket + 1) * search.width_ms
                if all_rows <= iq.INSIGHTS_ROW_LIMIT:
                    fetches.append((search, bucket, bucket, all_rows, wanted))
                elif search.width_ms > 1e-6:
                    finer.append(_Search(search.name, search.group, search.log_format, low, high,
                                         _width(search.width_ms), wanted))
                else:
                    problems[search.name] = f"over {iq.INSIGHTS_ROW_LIMIT:,} successes at one duration"
            missing = set(search.wanted) - {r for _, w in located.values() for r in w}
            if missing:
                problems[search.name] = f"ranks {sorted(missing)[:3]} not found among the counted durations"
            fetches = _merged(fetches, search, per)
        queries = [InsightsQuery((s.group,), start_s, end_s,
                                 iq.bucket_query(s.log_format, low * s.width_ms, (high + 1) * s.width_ms, limit),
                                 f"bucket {s.name}") for s, low, high, limit, _ in fetches]
        for (search, _, _, _, wanted), rows in zip(fetches, run(client, queries) if queries else [], strict=True):
            frame = pd.DataFrame.from_records(rows, columns=["duration_ms", "version"])
            ok = frame["version"].isna() | frame["version"].isin(traffic_versions(search.name))
            durations = pd.to_numeric(frame.loc[ok, "duration_ms"]).sort_values(ascending=False).to_numpy()
            for rank, inside in wanted.items():
                if inside <= len(durations):
                    values.setdefault(search.name, {})[rank] = float(durations[inside - 1])
                else:
                    problems[search.name] = f"rank {rank} not in its bucket's rows"
        pending = finer
    return values, problems


def _merged(fetches: list[tuple], search: _Search, per: pd.DataFrame) -> list[tuple]:
    """This search's bucket fetches joined into one range where the buckets between fit one query's rows.

    A fetch is (search, lowest bucket, highest bucket, rows, {rank: rank within the range, longest first})."""
    mine = sorted((f for f in fetches if f[0] is search), key=lambda f: -f[1])
    out = [f for f in fetches if f[0] is not search]
    for fetch in mine:
        if out and out[-1][0] is search:
            _, low, high, _, wanted = out[-1]
            between = per[(per.index >= fetch[1]) & (per.index <= high)]
            if int(between["all"].sum()) <= iq.INSIGHTS_ROW_LIMIT:
                shift = int(per[(per.index > fetch[2]) & (per.index <= high)]["traffic"].sum())
                joined = wanted | {rank: within + shift for rank, within in fetch[4].items()}
                out[-1] = (search, fetch[1], high, int(between["all"].sum()), joined)
                continue
        out.append(fetch)
    return out


def _locate(search: _Search, rows: list[Mapping[str, Any]], traffic: set[str],
            ) -> tuple[dict[int, tuple[int, dict[int, int]]], pd.DataFrame]:
    """Bucket -> (its rows in all versions, {rank: rank within the bucket}) for the wanted ranks, longest first;
    and the histogram per bucket (``all`` and ``traffic`` rows, longest bucket first)."""
    frame = pd.DataFrame.from_records(rows, columns=["version", "bucket", "n"])
    if frame.empty:
        return {}, pd.DataFrame(columns=["all", "traffic"])
    frame["bucket"] = pd.to_numeric(frame["bucket"]).astype("int64")
    frame["n"] = pd.to_numeric(frame["n"]).astype("int64")
    frame["traffic"] = frame["version"].isna() | frame["version"].isin(traffic)
    per = frame.groupby("bucket").apply(lambda g: pd.Series({"all": g["n"].sum(), "traffic": g.loc[g["traffic"], "n"].sum()}),
                                        include_groups=False).sort_index(ascending=False)
    located: dict[int, tuple[int, dict[int, int]]] = {}
    above = 0
    wanted = sorted(search.wanted.items(), key=lambda item: item[1])
    for bucket, counts in per.iterrows():
        inside = [(rank, within - above) for rank, within in wanted if above < within <= above + counts["traffic"]]
        if inside:
            located[int(bucket)] = (int(counts["all"]), dict(inside))
        above += int(counts["traffic"])
    return located, per


def traffic_of(live_versions: Mapping[str, Sequence[str]] | None, base: Collection[str]) -> Callable[[str], set[str]]:
    """A function -> its traffic versions (``base`` and its ``live`` alias's)."""
    return lambda name: set(base) | set(map(str, (live_versions or {}).get(name, ())))

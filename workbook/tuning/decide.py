"""Whether measured power tuning supports a memory change: ``recommend``, ``keep`` or ``insufficient-data`` (pure).

``analyze`` (the tool's analysis) always names a size, however close the others are. This module
answers the question a reviewer asks next: is the chosen size really better than what runs now,
by more than the measurement noise?

* The estimate at each size is what the bill is: the mean, over the warm successful invocations,
  of ``ceil(duration) x price per ms``; with weighted payloads, each payload's mean weighted by
  its share (so a heavy payload the tool's trimmed mean would drop still counts). Cold
  invocations are left out (their Duration is first-call work; their INIT is billed whatever
  the size); a size without warm ones falls back to its cold durations.
* Sizes below the memory floor, or where an invocation ran out of memory or timed out, are not
  eligible.
* Bootstrap (each size's, each payload's durations resampled) gives the uncertainty. With
  ``margin`` the practical tie (2% by default):

  - ``recommend`` when the choice beats the current size by more than the margin in at least
    ``target`` of the resamples, is within ``worst_pct`` (10%) of the best eligible size in at
    least ``target`` of them and within the margin in at least 80% (sizes that tie within the
    noise cannot be told apart, but none of them is far off); or when the current size breaks
    the floor;
  - ``keep`` when the current size is within the margin of the choice in at least ``target`` of
    the resamples (the sizes cost the same, within the noise);
  - neither before the choice and the current size have ``min_samples`` warm invocations each,
    and two of each weighted payload: a bootstrap of one or two values knows nothing of the
    spread. Below 30 values the bootstrap is also widened to Student's t.
  - ``insufficient-data`` otherwise, with the invocations that would settle it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pandas as pd

from workbook.tuning.analysis import Strategy, TuningError, base_cost_per_ms
from workbook.tuning.defaults import DECISION_CONFIDENCE, MIN_DECISION_SAMPLES, RECOMMEND_WORST_PCT, TIE_MARGIN_PCT
from workbook.tuning.floors import Floor
from workbook.tuning.model import _t_quantile

__all__ = ["MemoryDecision", "Status", "decide_memory", "size_related_error"]

#: One-sided 95% normal quantile, for the invocations a decision still needs.
_Z = 1.645
#: A recommended size must be within the margin of the best in at least this share of resamples (ties allowed).
CHOICE_SHARE = 0.8
#: Beyond this many more invocations per size, a decision is called unreachable (a tie at the margin).
_MAX_NEEDED = 10_000


class Status(str, Enum):
    """What a recommendation row says to do."""

    RECOMMEND = "recommend"
    INSUFFICIENT_DATA = "insufficient-data"
    KEEP = "keep"


def size_related_error(error: object) -> bool:
    """Whether an invocation error is the size's fault (out of memory, timed out), not the payload's."""
    text = str(error or "")
    return "OutOfMemory" in text or "Timedout" in text or "timed out" in text.lower() or "Timeout" in text


@dataclass
class MemoryDecision:
    """The memory decision for one function, with everything a reader needs to check it."""

    status: Status
    current_mb: int
    choice_mb: int
    recommended_mb: int
    confidence: float                 # in the change (recommend, insufficient-data) or in keeping (keep)
    choice_confidence: float          # the choice is within the margin of the best eligible size
    samples: int
    floor: Floor
    strategy: str
    margin: float
    reason: str
    needed: str = ""
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def changes(self) -> bool:
        return self.status is Status.RECOMMEND and self.recommended_mb != self.current_mb


def _strata(frame: pd.DataFrame, weights: Mapping[int, float] | None) -> list[tuple[float, pd.DataFrame]]:
    if weights and "payload" in frame:
        present = {int(p): frame[frame["payload"] == p] for p in frame["payload"].dropna().unique()}
        total = sum(weights.get(p, 0.0) for p in present) or 1.0
        return [(weights.get(p, 0.0) / total, rows) for p, rows in present.items() if weights.get(p, 0.0) > 0]
    return [(1.0, frame)]


def _incomplete(ok: pd.DataFrame, weights: Mapping[int, float] | None) -> set[int]:
    """Sizes missing a weighted payload: their mean would leave that payload out, so they cannot be compared yet."""
    if not weights or "payload" not in ok:
        return set()
    wanted = {p for p, w in weights.items() if w > 0}
    return {int(m) for m, rows in ok.groupby("memory_mb") if not wanted <= {int(p) for p in rows["payload"].dropna()}}


def _values(rows: pd.DataFrame) -> pd.DataFrame:
    warm = rows[rows["init_duration_ms"].isna()] if "init_duration_ms" in rows else rows
    return warm if len(warm) else rows


def _size_arrays(ok: pd.DataFrame, memory: int, weights: Mapping[int, float] | None, base: float,
                 resamples: int, rng: np.random.Generator) -> dict[str, object]:
    """Point means and bootstrap means of the cost and the duration at one size."""
    cost_point = duration_point = 0.0
    cost_boot = np.zeros(resamples)
    duration_boot = np.zeros(resamples)
    used, smallest = 0, None
    for share, rows in _strata(ok, weights):
        values = _values(rows)
        durations = values["duration_ms"].astype(float).to_numpy()
        smallest = len(durations) if smallest is None else min(smallest, len(durations))
        if not len(durations):
            continue
        costs = np.ceil(durations) * base * (memory / 128.0)
        index = rng.integers(0, len(durations), size=(resamples, len(durations)))
        widen = _small_sample_widening(len(durations))
        cost_point += share * float(costs.mean())
        duration_point += share * float(durations.mean())
        # Widened around the point estimate, and kept positive: a mean cost or duration is never below zero.
        cost_boot += share * np.maximum(costs.mean() + widen * (costs[index].mean(axis=1) - costs.mean()),
                                        costs.min() / 2)
        duration_boot += share * np.maximum(durations.mean() + widen * (durations[index].mean(axis=1) - durations.mean()),
                                            durations.min() / 2)
        used += len(durations)
    return {"cost": cost_point, "duration": duration_point, "cost_boot": cost_boot, "duration_boot": duration_boot,
            "samples": used, "smallest_stratum": smallest or 0}


def _small_sample_widening(n: int) -> float:
    """How much to widen a bootstrap of ``n`` values so its spread matches Student's t (the plain bootstrap is too narrow).

    The bootstrap's standard error is the plug-in ``s * sqrt((n - 1) / n) / sqrt(n)``, and its tails
    are normal; the t interval's are wider by ``t(n - 1) / z``. For n = 5 this is 1.58, for 30 1.06.
    """
    if n <= 1:
        return 1.0
    return _t_quantile(0.95, n - 1) / 1.96 * math.sqrt(n / (n - 1))


def _criterion(per_size: Mapping[int, dict], strategy: Strategy, weight: float, boot: bool) -> dict[int, np.ndarray]:
    cost = {m: np.asarray(s["cost_boot"] if boot else s["cost"], float) for m, s in per_size.items()}
    duration = {m: np.asarray(s["duration_boot"] if boot else s["duration"], float) for m, s in per_size.items()}
    if strategy is Strategy.COST:
        return cost
    if strategy is Strategy.SPEED:
        return duration
    max_cost = np.max(np.stack(list(cost.values())), axis=0)
    max_duration = np.max(np.stack(list(duration.values())), axis=0)
    return {m: weight * cost[m] / max_cost + (1 - weight) * duration[m] / max_duration for m in per_size}


def decide_memory(invocations: pd.DataFrame, current_mb: int, *, floor: Floor, strategy: str | Strategy = "cost",
                  balanced_weight: float = 0.5, base_cost: float | None = None,
                  weights: Mapping[int, float] | None = None, margin: float = TIE_MARGIN_PCT / 100.0,
                  target: float = DECISION_CONFIDENCE, resamples: int = 400, seed: int = 0,
                  min_samples: int = MIN_DECISION_SAMPLES, worst_pct: float = RECOMMEND_WORST_PCT) -> MemoryDecision:
    """The decision on ``invocations`` (memory_mb, duration_ms, init_duration_ms, error, optional payload).

    Long because it is one decision table: eligibility, estimates, the bootstrap and the three
    outcomes, each with the reason a reader sees; split, the rules would hide from each other.
    """
    strategy = Strategy(strategy)
    base = base_cost if base_cost is not None else base_cost_per_ms()
    frame = invocations if invocations is not None else pd.DataFrame()
    if not len(frame):
        raise TuningError("no invocations to decide on: power tuning measured nothing")
    errors = frame["error"] if "error" in frame else pd.Series([None] * len(frame), index=frame.index)
    ok = frame[errors.isna()]
    bad_sizes = sorted({int(m) for m, e in zip(frame["memory_mb"], errors, strict=True) if size_related_error(e)})
    measured = sorted(int(m) for m in ok["memory_mb"].unique())
    incomplete = _incomplete(ok, weights)
    eligible = [m for m in measured if m >= floor.value and m not in bad_sizes and m not in incomplete]
    rng = np.random.default_rng(seed)
    per_size = {m: _size_arrays(ok[ok["memory_mb"] == m], m, weights, base, resamples, rng) for m in measured}
    table = pd.DataFrame([{"memory_mb": m, "samples": int(s["samples"]), "mean_duration_ms": s["duration"],
                           "mean_cost_usd": s["cost"], "eligible": m in eligible} for m, s in per_size.items()])
    samples = int(len(ok))
    common = {"floor": floor, "strategy": strategy.value, "margin": margin, "samples": samples, "estimates": table}
    if not eligible:
        why = (f"no measured size is eligible: every size is below the {floor.value:,.0f} MB floor "
               f"({floor.reason}) or failed" if measured else "every invocation failed: nothing to compare")
        return MemoryDecision(Status.INSUFFICIENT_DATA, current_mb, current_mb, current_mb, 0.0, 0.0, reason=why,
                              needed=f"measure sizes at or above {floor.value:,.0f} MB", **common)
    point = _criterion({m: per_size[m] for m in eligible}, strategy, balanced_weight, boot=False)
    boot = _criterion({m: per_size[m] for m in eligible}, strategy, balanced_weight, boot=True)
    choice = min(eligible, key=lambda m: (float(point[m]), m))
    stack = np.stack([boot[m] for m in eligible])
    best = stack.min(axis=0)
    choice_confidence = float(np.mean(boot[choice] <= best * (1 + margin)))
    # Sizes that tie within the noise cannot all be told apart; what a recommendation must guarantee is that
    # its size is not far from the best: within worst_pct of it in ``target`` of the resamples.
    choice_safe = float(np.mean(boot[choice] <= best * (1 + worst_pct / 100.0)))
    table["criterion"] = [float(point[m]) if m in point else float("nan") for m in table["memory_mb"]]
    table["near_best_share"] = [float(np.mean(boot[m] <= best * (1 + margin))) if m in boot else 0.0
                                for m in table["memory_mb"]]
    table["low"] = [float(np.quantile(boot[m], 0.025)) if m in boot else float("nan") for m in table["memory_mb"]]
    table["high"] = [float(np.quantile(boot[m], 0.975)) if m in boot else float("nan") for m in table["memory_mb"]]
    label = {Strategy.COST: "cost", Strategy.SPEED: "duration", Strategy.BALANCED: "balanced score"}[strategy]
    if current_mb < floor.value or current_mb in bad_sizes:
        broke = (f"out of memory or timed out at the current {current_mb} MB" if current_mb in bad_sizes
                 else f"the current {current_mb} MB is below the {floor.value:,.0f} MB floor")
        return MemoryDecision(Status.RECOMMEND, current_mb, choice, choice, 1.0, choice_confidence,
                              reason=f"{broke}; {choice} MB is the best eligible size by {label}", **common)
    if current_mb not in per_size or per_size[current_mb]["samples"] == 0:
        return MemoryDecision(Status.INSUFFICIENT_DATA, current_mb, choice, current_mb, 0.0, choice_confidence,
                              reason=f"the current {current_mb} MB was not measured: nothing to compare {choice} MB with",
                              needed=f"measure the current {current_mb} MB too", **common)
    current_boot = boot[current_mb]
    p_change = float(np.mean(current_boot > boot[choice] * (1 + margin)))
    p_keep = float(np.mean(current_boot <= boot[choice] * (1 + margin)))
    thin = [m for m in sorted({choice, current_mb})
            if per_size[m]["samples"] < min_samples or per_size[m]["smallest_stratum"] < 2]
    if thin:
        p_change, p_keep = min(p_change, target - 1e-9), min(p_keep, target - 1e-9)
    gain = float(point[current_mb] / point[choice] - 1) if point[choice] > 0 else 0.0
    spread = f"{choice} MB is {gain:+.1%} on {label} against {current_mb} MB"
    if choice != current_mb and p_change >= target and choice_safe >= target and choice_confidence >= CHOICE_SHARE:
        ties = "" if choice_confidence >= target else (
            f"; other sizes are as good within the noise (it is within {margin:.0%} of the best in "
            f"{choice_confidence:.0%} of resamples, within {worst_pct:.0f}% in {choice_safe:.0%})")
        return MemoryDecision(Status.RECOMMEND, current_mb, choice, choice, min(p_change, choice_safe),
                              choice_confidence, reason=(f"{choice} MB beats {current_mb} MB by more than "
                                                          f"{margin:.0%} on {label} in {p_change:.0%} of resamples "
                                                          f"(point estimate {gain:.1%} better){ties}"), **common)
    if p_keep >= target:
        return MemoryDecision(Status.KEEP, current_mb, choice, current_mb, p_keep, choice_confidence,
                              reason=(f"the current {current_mb} MB is within {margin:.0%} of the best size on {label} "
                                      f"in {p_keep:.0%} of resamples: the difference is within the noise ({spread})"),
                              **common)
    needed = _needed(per_size, current_boot, boot[choice], gain, margin, current_mb, choice, p_change >= target,
                     table)
    why = (f"{spread}, but the measurements cannot tell yet: the change pays in {p_change:.0%} of resamples, "
           f"keeping is as good in {p_keep:.0%} (both need {target:.0%})")
    return MemoryDecision(Status.INSUFFICIENT_DATA, current_mb, choice, current_mb, p_change, choice_confidence,
                          reason=why, needed=needed, **common)


def _needed(per_size: Mapping[int, dict], current_boot: np.ndarray, choice_boot: np.ndarray, gain: float,
            margin: float, current_mb: int, choice_mb: int, change_is_clear: bool, table: pd.DataFrame) -> str:
    """How many more invocations per size would settle the decision (the bootstrap's spread, scaled by 1/sqrt(n))."""
    if change_is_clear:
        contenders = [int(m) for m, s in zip(table["memory_mb"], table["near_best_share"], strict=True)
                      if s >= 0.05 and m != current_mb]
        return (f"the change pays, but {', '.join(map(str, contenders))} MB are still close: "
                f"measure about {max(per_size[choice_mb]['samples'], 10):,} more at each")
    ratio = current_boot / np.where(choice_boot > 0, choice_boot, np.nan) - 1
    se = float(np.nanstd(ratio))
    distance = abs(gain - margin)
    n_now = min(int(per_size[current_mb]["samples"]), int(per_size[choice_mb]["samples"]))
    if se <= 0 or n_now <= 0:
        return f"measure {current_mb} and {choice_mb} MB again"
    if distance < 1e-4:
        return (f"more than {_MAX_NEEDED:,} per size: {current_mb} and {choice_mb} MB differ by about the "
                f"{margin:.0%} margin")
    n_total = math.ceil(n_now * (_Z * se / distance) ** 2)
    more = max(n_total - n_now, 1)
    if more > _MAX_NEEDED:
        return (f"more than {_MAX_NEEDED:,} more per size: {current_mb} and {choice_mb} MB differ by about the "
                f"{margin:.0%} margin")
    return f"about {more:,} more warm invocations at each of {current_mb} and {choice_mb} MB"


def weights_of(payloads: Sequence[dict] | None) -> dict[int, float] | None:
    """Payload index -> weight for weighted payloads (``[{"payload": ..., "weight": w}]``); None for one payload."""
    if not payloads:
        return None
    return {i: float(p["weight"]) for i, p in enumerate(payloads)}

"""Beyond the tool: a fitted duration-versus-memory model, and the confidence of a choice.

``fit_duration_model`` fits ``duration = a + b / min(memory, cap)`` (a fixed part plus a CPU-bound
part; ``cap`` is one vCPU for single-threaded work, or Lambda's maximum when the measurements keep
improving past it). ``recommend_from_model`` predicts every power value from a few measured ones
and chooses as ``analyze`` would; its confidence is the share of bootstrap refits that agree.
``bootstrap_confidence`` does the same on the measured durations alone.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from infra.specs import MB_PER_VCPU, MEMORY_MAX_MB
from workbook.tuning.analysis import (
    Strategy,
    TuningError,
    analyze,
    base_cost_per_ms,
    choose,
    compute_price,
    trimmed_mean,
)

__all__ = ["DurationModel", "ModelRecommendation", "bootstrap_confidence", "fit_duration_model",
           "recommend_from_model"]


@dataclass
class DurationModel:
    """``duration_ms = a + b / min(memory_mb, cap_mb)``: a fixed part plus a CPU-bound part.

    Lambda's CPU share grows with memory up to one vCPU at 1,769 MB (a single-threaded
    handler gains nothing beyond); ``cap_mb`` is 1,769 for that shape or 10,240 when the
    measurements keep improving past it (multi-threaded work).
    """

    a_ms: float
    b_ms_mb: float
    cap_mb: int
    residual_sd_ms: float
    r_squared: float
    covariance: np.ndarray
    dof: int
    measured: dict[int, float]

    def predict(self, memory_mb: float | Sequence[float]) -> np.ndarray:
        m = np.minimum(np.asarray(memory_mb, dtype=float), self.cap_mb)
        return self.a_ms + self.b_ms_mb / m

    def interval(self, memory_mb: Sequence[float], level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Confidence interval of the mean duration at each memory (normal/t approximation)."""
        m = np.minimum(np.asarray(memory_mb, dtype=float), self.cap_mb)
        design = np.column_stack([np.ones_like(m), 1.0 / m])
        se = np.sqrt(np.einsum("ij,jk,ik->i", design, self.covariance, design))
        z = _t_quantile(level, self.dof)
        mean = self.predict(memory_mb)
        return mean - z * se, mean + z * se


def _t_quantile(level: float, dof: int) -> float:
    """Two-sided Student-t quantile (a small table; numpy has none and scipy is not a dependency)."""
    if level != 0.95:
        return NormalDist().inv_cdf(0.5 + level / 2)
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}
    if dof <= 0:
        return float("inf")
    for limit in sorted(table):
        if dof <= limit:
            return table[limit]
    return 1.96


def fit_duration_model(durations_by_memory: Mapping[int, Sequence[float]], discard_top_bottom: float = 0.2) -> DurationModel:
    """Least-squares fit of ``a + b / min(m, cap)`` to every measured duration (trimmed per value).

    Both caps (1,769 and 10,240 MB) are fitted; the one with the smaller residual wins.
    Needs at least two memory values with data.
    """
    xs, ys = [], []
    measured: dict[int, float] = {}
    for memory, durations in durations_by_memory.items():
        values = sorted(float(d) for d in durations)
        if not values:
            continue
        k = int(len(values) * discard_top_bottom)
        kept = values[k : len(values) - k] if k > 0 else values
        measured[int(memory)] = float(np.mean(kept))
        xs.extend([float(memory)] * len(kept))
        ys.extend(kept)
    if len(measured) < 2:
        raise TuningError("the duration model needs measurements at two memory values at least")
    x, y = np.asarray(xs), np.asarray(ys)
    best = None
    for cap in (MB_PER_VCPU, MEMORY_MAX_MB):
        design = np.column_stack([np.ones_like(x), 1.0 / np.minimum(x, cap)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residuals = y - design @ coef
        sse = float(residuals @ residuals)
        if best is None or sse < best[0] - 1e-9:
            best = (sse, cap, coef, design)
    sse, cap, coef, design = best
    dof = max(len(y) - 2, 1)
    sigma2 = sse / dof
    try:
        covariance = sigma2 * np.linalg.inv(design.T @ design)
    except np.linalg.LinAlgError:
        covariance = np.full((2, 2), np.inf)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - sse / total if total > 0 else 1.0
    return DurationModel(float(coef[0]), float(coef[1]), int(cap), math.sqrt(sigma2), r2, covariance, dof, measured)


@dataclass
class ModelRecommendation:
    """A recommendation from the fitted model, with its confidence (0..1)."""

    memory_mb: int
    confidence: float
    predicted: pd.DataFrame
    model: DurationModel


def recommend_from_model(
    durations_by_memory: Mapping[int, Sequence[float]],
    power_values: Sequence[int],
    strategy: str | Strategy = "cost",
    balanced_weight: float = 0.5,
    discard_top_bottom: float = 0.2,
    *,
    base_cost: float | None = None,
    bootstrap: int = 200,
    seed: int = 0,
) -> ModelRecommendation:
    """Predict every power value from the measured ones and choose as ``analyze`` would.

    Confidence is the share of bootstrap refits (resampling each value's durations) that
    choose the same memory.
    """
    model = fit_duration_model(durations_by_memory, discard_top_bottom)
    values = [int(v) for v in power_values]
    base = base_cost if base_cost is not None else base_cost_per_ms()

    def choose(m: DurationModel) -> int:
        predicted = {v: [float(max(m.predict(v), 1.0))] for v in values}
        return analyze(predicted, strategy, balanced_weight, 0.0, base_cost=base).memory_mb

    choice = choose(model)
    rng = np.random.default_rng(seed)
    agree = 0
    samples = {k: np.asarray(v, dtype=float) for k, v in durations_by_memory.items() if len(v)}
    for _ in range(bootstrap):
        resampled = {k: rng.choice(v, size=len(v), replace=True) for k, v in samples.items()}
        try:
            agree += choose(fit_duration_model(resampled, discard_top_bottom)) == choice
        except TuningError:
            continue
    lo, hi = model.interval(values)
    predicted = pd.DataFrame({
        "memory_mb": values,
        "predicted_duration_ms": model.predict(values),
        "low_ms": lo,
        "high_ms": hi,
        "measured_duration_ms": [model.measured.get(v, float("nan")) for v in values],
    })
    predicted["predicted_cost_usd"] = [compute_price(base, v, max(d, 1.0))
                                       for v, d in zip(values, predicted["predicted_duration_ms"], strict=True)]
    return ModelRecommendation(choice, agree / bootstrap if bootstrap else float("nan"), predicted, model)




def _quick_choice(durations: Mapping[int, Sequence[float]], strategy: Strategy, weight: float, discard: float,
                  base: float) -> int:
    stats = []
    for memory, values in durations.items():
        average = trimmed_mean(values, discard)
        if average:
            stats.append({"memory_mb": memory, "average_duration_ms": average,
                          "average_cost_usd": compute_price(base, memory, average)})
    return choose(stats, strategy, weight, "average_cost_usd")["memory_mb"]


def bootstrap_confidence(durations: Mapping[int, Sequence[float]], strategy: str | Strategy = "cost",
                         balanced_weight: float = 0.5, discard_top_bottom: float = 0.2, *, base_cost: float | None = None,
                         resamples: int = 200, seed: int = 0) -> tuple[int, float, dict[int, float]]:
    """The choice on ``durations``, the share of bootstrap resamples that agree, and each value's win share."""
    strategy = Strategy(strategy)
    base = base_cost if base_cost is not None else base_cost_per_ms()
    arrays = {m: np.asarray(v, dtype=float) for m, v in durations.items() if len(v)}
    choice = _quick_choice(arrays, strategy, balanced_weight, discard_top_bottom, base)
    rng = np.random.default_rng(seed)
    wins: dict[int, int] = {m: 0 for m in arrays}
    for _ in range(resamples):
        sample = {m: rng.choice(v, size=len(v), replace=True) for m, v in arrays.items()}
        wins[_quick_choice(sample, strategy, balanced_weight, discard_top_bottom, base)] += 1
    return choice, wins[choice] / resamples, {m: w / resamples for m, w in wins.items()}



"""The memory decision and adaptive tuning: recommend only what the measurements support, keep within the noise."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from infra.specs import vcpus_for
from workbook import tuning
from workbook.tuning import adaptive, decide, floors
from workbook.tuning.decide import Status
from workbook.tuning.runner import InvocationResult

FLOOR = floors.Floor(128.0, "test floor", "memory")


class ModelInvoker:
    """A function of known behaviour: ``wait_ms`` no CPU speeds up, plus ``cpu_ms`` at one vCPU on ``threads``.

    Each payload may scale the CPU work and set the peak memory; a payload whose peak does not fit
    in the size runs out of memory. The first invocation after ``set_memory`` is a cold start.
    """

    def __init__(self, wait_ms=0.0, cpu_ms=200.0, noise=0.03, threads=1, seed=0, peak_mb=None):
        self.wait_ms, self.cpu_ms, self.noise, self.threads = wait_ms, cpu_ms, noise, threads
        self.rng = np.random.default_rng(seed)
        self.memory, self.cold, self.cleaned = None, False, 0
        self.peak_mb = peak_mb or (lambda payload: 60.0)
        self.calls = []

    def set_memory(self, memory_mb):
        self.memory, self.cold = memory_mb, True

    def true_duration(self, memory_mb, payload=None):
        scale = (payload or {}).get("scale", 1.0)
        return self.wait_ms + scale * self.cpu_ms / min(vcpus_for(memory_mb), self.threads)

    def invoke(self, payload):
        self.calls.append(payload)
        peak = self.peak_mb(payload)
        init = 150.0 if self.cold else None
        self.cold = False
        if peak >= self.memory:
            return InvocationResult(20.0, 20.0, init, float(self.memory), "Runtime.OutOfMemory")
        duration = self.true_duration(self.memory, payload) * (1 + self.rng.normal(0, self.noise))
        return InvocationResult(duration, math.ceil(duration + (init or 0)), init, peak, None)

    def cleanup(self):
        self.cleaned += 1


def true_cost(invoker, memory_mb, payloads=None):
    mix = payloads or [{"payload": None, "weight": 1.0}]
    total = sum(p["weight"] for p in mix)
    return sum(p["weight"] / total * math.ceil(invoker.true_duration(memory_mb, p["payload"])) * memory_mb for p in mix)


def frame(durations_by_memory, payload=None, errors=None):
    rows = [{"memory_mb": m, "duration_ms": d, "init_duration_ms": None, "max_memory_used_mb": 60.0,
             "error": (errors or {}).get(m), "payload": payload} for m, ds in durations_by_memory.items() for d in ds]
    return pd.DataFrame(rows)


def test_a_clear_saving_is_recommended():
    rng = np.random.default_rng(0)
    data = frame({128: 2850 * (1 + rng.normal(0, 0.02, 20)), 1024: 400 * (1 + rng.normal(0, 0.02, 20))})
    decision = decide.decide_memory(data, 1024, floor=FLOOR)
    assert decision.status is Status.RECOMMEND and decision.recommended_mb == 128 and decision.confidence >= 0.95


def test_a_tie_within_the_margin_is_keep():
    rng = np.random.default_rng(1)
    data = frame({128: 2765 * (1 + rng.normal(0, 0.005, 60)), 1024: 345.6 * (1 + rng.normal(0, 0.005, 60))})
    decision = decide.decide_memory(data, 1024, floor=FLOOR)
    assert decision.status is Status.KEEP and decision.recommended_mb == 1024 and "within the noise" in decision.reason


def test_noise_larger_than_the_difference_is_insufficient_data_with_what_to_collect():
    rng = np.random.default_rng(2)
    data = frame({128: 2765 * 0.96 * (1 + rng.normal(0, 0.10, 8)), 1024: 345.6 * (1 + rng.normal(0, 0.10, 8))})
    decision = decide.decide_memory(data, 1024, floor=FLOOR)
    assert decision.status is Status.INSUFFICIENT_DATA and "more" in decision.needed


def test_three_values_per_size_never_decide():
    # GIVEN two warm values per size: a bootstrap of them knows nothing about the spread
    data = frame({128: [2000.0, 2001.0], 1024: [400.0, 401.0]})
    assert decide.decide_memory(data, 1024, floor=FLOOR).status is Status.INSUFFICIENT_DATA


def test_sizes_below_the_floor_or_out_of_memory_are_never_chosen():
    data = frame({128: [100.0] * 20, 512: [100.0] * 20, 1024: [100.0] * 20}, errors={128: "Runtime.OutOfMemory"})
    decision = decide.decide_memory(data, 1024, floor=floors.Floor(600.0, "peak", "memory"))
    assert decision.choice_mb == 1024 and not decision.estimates.set_index("memory_mb").loc[512, "eligible"]


def test_a_current_size_below_the_floor_is_raised():
    data = frame({256: [300.0] * 20, 1024: [300.0] * 20})
    decision = decide.decide_memory(data, 256, floor=floors.Floor(500.0, "peak 380 MB + 30%", "memory"))
    assert decision.status is Status.RECOMMEND and decision.recommended_mb == 1024 and decision.confidence == 1.0


def test_no_invocation_or_all_failed_is_clear():
    with pytest.raises(tuning.TuningError, match="measured nothing"):
        decide.decide_memory(pd.DataFrame(), 1024, floor=FLOOR)
    failed = frame({128: [1.0] * 5}, errors={128: "Unhandled"})
    decision = decide.decide_memory(failed, 1024, floor=FLOOR)
    assert decision.status is Status.INSUFFICIENT_DATA and "failed" in decision.reason


def test_a_weighted_mix_counts_the_heavy_payload_the_trimmed_mean_drops():
    # GIVEN 80% light and 20% heavy invocations (ten times the work) at two sizes
    light, heavy = [100.0] * 16, [1000.0] * 4
    rows = []
    for memory, factor in ((512, 1.0), (1024, 0.5)):
        rows += [{"memory_mb": memory, "duration_ms": d * factor, "init_duration_ms": None, "payload": p,
                  "max_memory_used_mb": 60.0, "error": None} for d, p in [(x, 0) for x in light] + [(x, 1) for x in heavy]]
    decision = decide.decide_memory(pd.DataFrame(rows), 1024, floor=FLOOR, weights={0: 0.8, 1: 0.2})
    estimates = decision.estimates.set_index("memory_mb")
    # THEN the mean is the mix's (0.8 x 100 + 0.2 x 1000), where the tool's 20% trimmed mean would drop the heavy ones
    assert estimates.loc[512, "mean_duration_ms"] == pytest.approx(280.0)
    assert tuning.trimmed_mean(light + heavy, 0.2) == pytest.approx(100.0)


def test_payload_mix_spreads_the_weights_over_any_prefix():
    mix = adaptive.PayloadMix([{"payload": "a", "weight": 3}, {"payload": "b", "weight": 1, "largest": True}])
    order = [mix.next_index(512) for _ in range(12)]
    assert order[:2] == [0, 1]                    # every payload once first, the heavier first
    assert order.count(1) == 3 and mix.largest == 1
    for n in range(4, 13):
        assert abs(order[:n].count(1) - n / 4) <= 1


def test_adaptive_recommends_a_clear_saving_and_stops_early():
    invoker = ModelInvoker(wait_ms=80, noise=0.03, seed=3)
    run = tuning.adaptive_power_tuning(invoker, max_invocations=100, current_mb=1024, seed=3)
    costs = {m: true_cost(invoker, m) for m in tuning.DEFAULT_POWER_VALUES}
    assert run.decision.status is Status.RECOMMEND and invoker.cleaned == 1
    assert costs[run.memory_mb] <= min(costs.values()) * 1.02
    assert run.invocations_used < 100


def test_adaptive_never_recommends_on_flat_cost():
    # GIVEN pure CPU work below one vCPU: the cost is the same at every size up to 1,769 MB
    for seed in range(5):
        run = tuning.adaptive_power_tuning(ModelInvoker(noise=0.05, seed=seed), max_invocations=60, current_mb=1024,
                                           seed=seed)
        assert run.decision.status is not Status.RECOMMEND


def test_adaptive_probes_the_worst_case_inputs_first_and_never_measures_below_their_floor():
    # GIVEN the usual payload and two worst-case probes, the larger needing 300 MB
    peaks = {"small": 60.0, "large": 300.0, "wide": 200.0}
    invoker = ModelInvoker(wait_ms=50, seed=4, peak_mb=lambda p: peaks[p["size"]])
    payloads = [{"payload": {"size": "small"}, "weight": 1},
                {"payload": {"size": "wide", "scale": 2}, "probe": "wide", "description": "a wide one"},
                {"payload": {"size": "large", "scale": 3}, "probe": "large", "description": "the largest one"}]
    run = tuning.adaptive_power_tuning(invoker, payload=payloads, max_invocations=80, current_mb=1024, seed=4)
    # THEN each probe ran once at the largest size before anything else, and once at the recommended size
    probes = run.probes
    assert list(probes["probe"][:2]) == ["wide", "large"] and set(probes["memory_mb"][:2]) == {3008}
    assert invoker.calls[:2] == [{"size": "wide", "scale": 2}, {"size": "large", "scale": 3}]
    assert sorted(probes[probes["memory_mb"] != 3008]["memory_mb"]) == [run.decision.recommended_mb] * 2
    # AND the floor comes from the larger probe's peak and names it; no size under it was invoked or chosen
    assert run.floor.value >= 300 * 1.3 and "worst-case input large (the largest one)" in run.floor.reason
    assert run.floor_probe == "large"
    assert run.invocations["memory_mb"].min() >= run.floor.value and run.memory_mb >= run.floor.value
    # AND the probes are not in the mix: every measured invocation is the usual payload
    assert set(run.invocations["payload"]) == {0} and run.weights is None


def test_a_refused_probe_is_an_error_not_a_peak():
    invoker = ModelInvoker(wait_ms=50, seed=5, peak_mb=lambda p: 50.0)
    payloads = [{"payload": {"size": "small"}, "weight": 1},
                {"payload": {"size": "huge"}, "probe": "huge", "check": lambda response: "over the limit"}]
    run = tuning.adaptive_power_tuning(invoker, payload=payloads, max_invocations=40, current_mb=1024, seed=5)
    assert (run.probes["error"] == "refused: over the limit").all() and run.floor_probe is None
    assert "worst-case" not in run.floor.reason


def test_adaptive_rejects_a_budget_too_small():
    with pytest.raises(tuning.TuningInputError, match="max_invocations"):
        tuning.adaptive_power_tuning(ModelInvoker(), max_invocations=1)

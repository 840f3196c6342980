"""Benchmark: how often power tuning's memory advice is right, against a known truth measured in the sandbox.

Five synthetic functions (``bench/profiles/``): pure CPU; CPU plus I/O wait; memory-heavy, with a
peak set by the payload (weighted payloads, the largest flagged); multi-threaded (SHA-256 in four
threads, which gains above one vCPU); a bimodal payload mix. Each runs in the local sandbox
(``workbook.local.sandbox``: CPU share by cgroup CFS quota as root, memory limit, cold starts).

1. **Truth.** Each profile is measured at the six power values, ``--truth`` invocations per size
   (plus ``--pool`` more, kept apart). The true cost (duration, balanced score) of a size is the
   mean over its warm invocations of ``ceil(duration) x price``, each payload weighted by its
   share; sizes below the memory floor (the peak at the largest payload, probed first, + 30%) or that ran out
   of memory are not eligible. The true optimum per strategy is the eligible size that minimises it.
2. **Repeats.** At budgets of 1/10, 1/5 and 1/3 of a 300-invocation sweep, ``--repeats`` times per
   profile and strategy: the workbook's adaptive tuning (``workbook.tuning.adaptive_power_tuning``,
   current size ``--current-mb``) and aws-lambda-power-tuning's exhaustive method (the same
   number of invocations at every size, the tool's analysis). The repeats replay invocations
   drawn from the held-out pool (independent of the truth's); ``--live`` invokes the sandbox instead.
3. **Scores,** per profile, strategy, budget and method: the share of repeats whose answer is
   within 2% of the true optimum on the strategy's criterion (the adaptive method's answer is the
   size it recommends, the current size when it says keep, its best estimate when it says
   insufficient-data; the tool's is its choice); the share that returned
   ``recommend`` for a size that is not (the tool always recommends); and the count of
   recommendations that are more than 10% off or break the floor (target: none).

Prints figures; asserts nothing about time. A full run takes 15-20 minutes on two shared cores.

    .venv/bin/python bench/recommend_accuracy.py [--quick] [--repeats 10] [--profiles cpu_io,bimodal] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbook.local.sandbox import FunctionConfig, Sandbox
from workbook.tuning import adaptive_power_tuning, run_power_tuning
from workbook.tuning.adaptive import PayloadMix
from workbook.tuning.analysis import Strategy, base_cost_per_ms
from workbook.tuning.decide import Status, size_related_error
from workbook.tuning.defaults import DEFAULT_POWER_VALUES
from workbook.tuning.floors import memory_floor
from workbook.tuning.runner import InvocationResult
from workbook.tuning.sandbox_invoker import SandboxInvoker

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
SWEEP = 300                                   # the reference sweep: 6 sizes x 50
BUDGET_SHARES = ((1, 10), (1, 5), (1, 3))
WITHIN = 0.02
WRONG_BY = 0.10
COLD_EVERY = 20                               # a fresh environment every 20 invocations in the measurements


@dataclass(frozen=True)
class Profile:
    """A synthetic function: its module and its payload (one, or weighted ``[{"payload", "weight", "largest"}]``)."""

    name: str
    module: str
    payload: Any
    note: str

    @property
    def mix(self) -> PayloadMix:
        return PayloadMix(self.payload)

    def tool_payload(self) -> Any:
        """The payload as aws-lambda-power-tuning takes it (integer weights, no extra keys)."""
        if not isinstance(self.payload, list):
            return self.payload
        return [{"payload": p["payload"], "weight": int(round(p["weight"] * 10))} for p in self.payload]


PROFILES = (
    Profile("pure CPU", "pure_cpu", {"rounds": 2}, "single-threaded work only"),
    Profile("CPU + I/O wait", "cpu_io", {"wait_ms": 30, "rounds": 2}, "30 ms no CPU speeds up, then CPU"),
    Profile("memory-heavy", "memory_heavy",
            [{"payload": {"mb": 10, "rounds": 1}, "weight": 0.8},
             {"payload": {"mb": 120, "rounds": 1}, "weight": 0.2, "largest": True}],
            "touches 10 MB (80%) or 120 MB (20%, the largest): 128 MB runs out on the largest"),
    Profile("multi-threaded", "multi_thread", {"threads": 4, "rounds": 24}, "SHA-256 in 4 threads: gains above 1,769 MB"),
    Profile("bimodal mix", "bimodal",
            [{"payload": {"rounds": 2}, "weight": 0.7}, {"payload": {"rounds": 16}, "weight": 0.3}],
            "70% light, 30% eight times heavier"),
)


# --- measuring -------------------------------------------------------------------------------------------

def _config(profile: Profile, memory_mb: int, suffix: str = "") -> FunctionConfig:
    return FunctionConfig(key=f"bench-{profile.module}", function_name=f"bench-{profile.module}-{memory_mb}{suffix}",
                          memory_mb=memory_mb, timeout_s=60, handler=f"{profile.module}.handler", environment={},
                          code_paths=(str(PROFILES_DIR),))


def _record(memory: int, payload_index: int, result: InvocationResult) -> dict[str, Any]:
    return {"memory_mb": memory, "payload": payload_index, "duration_ms": result.duration_ms,
            "billed_duration_ms": result.billed_duration_ms, "init_duration_ms": result.init_duration_ms,
            "max_memory_used_mb": result.max_memory_used_mb, "error": result.error}


def measure_size(sandbox: Sandbox, profile: Profile, memory_mb: int, count: int) -> list[dict[str, Any]]:
    """``count`` invocations at one size, in proportion to the payload weights, a fresh environment every 20."""
    invoker = SandboxInvoker(_config(profile, memory_mb), sandbox=sandbox)
    mix, records = profile.mix, []
    for i in range(count):
        if i % COLD_EVERY == 0:
            invoker.set_memory(memory_mb)
        index = mix.next_index(memory_mb)
        records.append(_record(memory_mb, index, invoker.invoke(mix.payloads[index])))
    invoker.cleanup()
    return records


def measure_profile(sandbox: Sandbox, profile: Profile, values: Sequence[int], count: int,
                    progress: Callable[[str], None] = print) -> pd.DataFrame:
    """``count`` invocations at every size: up to 512 MB (a small CPU share each) at once, the larger ones in turn."""
    records: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run(memory: int) -> None:
        found = measure_size(sandbox, profile, memory, count)
        with lock:
            records.extend(found)

    small = [v for v in values if v <= 512]
    threads = [threading.Thread(target=run, args=(v,)) for v in small]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for value in values:
        if value not in small:
            run(value)
    progress(f"  measured {len(records):,} invocations of {profile.name}")
    return pd.DataFrame.from_records(records)


def split(records: pd.DataFrame, truth_n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per size, a random ``truth_n`` for the truth; the rest is the replay pool (independent samples)."""
    rng = np.random.default_rng(seed)
    truth, pool = [], []
    for _, rows in records.groupby("memory_mb"):
        order = rng.permutation(len(rows))
        truth.append(rows.iloc[order[:truth_n]])
        pool.append(rows.iloc[order[truth_n:]])
    return pd.concat(truth), pd.concat(pool)


# --- the truth ---------------------------------------------------------------------------------------------

@dataclass
class Truth:
    """Per size: the true mean cost and duration (warm, payload-weighted), eligibility; per strategy: the criterion."""

    table: pd.DataFrame
    floor_mb: float
    criteria: dict[str, dict[int, float]] = field(default_factory=dict)
    optimum: dict[str, int] = field(default_factory=dict)
    current_off: dict[str, float] = field(default_factory=dict)      # the current size's distance from the optimum

    def off_by(self, strategy: str, memory_mb: int) -> float:
        """How much worse than the optimum ``memory_mb`` is on the strategy's criterion (inf when not eligible)."""
        criterion = self.criteria[strategy]
        if memory_mb not in criterion:
            return math.inf
        return criterion[memory_mb] / criterion[self.optimum[strategy]] - 1


def estimate(records: pd.DataFrame, weights: dict[int, float] | None, base: float) -> pd.DataFrame:
    """Per size: warm, successful invocations' mean ceil(duration) x price and mean duration, payload-weighted."""
    rows = []
    for memory, at_size in records.groupby("memory_mb"):
        ok = at_size[at_size["error"].isna()]
        warm = ok[ok["init_duration_ms"].isna()]
        cost = duration = 0.0
        shares = weights or {int(p): 1.0 for p in ok["payload"].unique()} or {0: 1.0}
        total = sum(shares.values())
        complete = True
        for payload, share in shares.items():
            values = warm[warm["payload"] == payload]["duration_ms"].astype(float).to_numpy()
            if not len(values):
                complete = False
                continue
            cost += share / total * float(np.mean(np.ceil(values))) * base * memory / 128
            duration += share / total * float(np.mean(values))
        rows.append({"memory_mb": int(memory), "mean_cost": cost, "mean_duration_ms": duration,
                     "failed": int(at_size["error"].map(size_related_error).sum()), "complete": complete,
                     "peak_mb": float(at_size["max_memory_used_mb"].max())})
    return pd.DataFrame(rows).sort_values("memory_mb").reset_index(drop=True)


def true_behaviour(records: pd.DataFrame, profile: Profile, base: float, weight: float = 0.5) -> Truth:
    mix = profile.mix
    table = estimate(records, mix.weights_by_index(), base)
    largest = records[records["payload"] == mix.largest]["max_memory_used_mb"] if mix.largest is not None else None
    floor = memory_floor(float(records["max_memory_used_mb"].max()),
                         probe_peak_mb=float(largest.max()) if largest is not None and len(largest) else None,
                         probe="largest payload",
                         oom_at_mb=[int(m) for m, e in zip(records["memory_mb"], records["error"], strict=True)
                                    if "OutOfMemory" in str(e or "")])
    table["eligible"] = (table["memory_mb"] >= floor.value) & (table["failed"] == 0) & table["complete"]
    ok = table[table["eligible"]].set_index("memory_mb")
    truth = Truth(table, floor.value)
    max_cost, max_duration = ok["mean_cost"].max(), ok["mean_duration_ms"].max()
    truth.criteria = {
        "cost": ok["mean_cost"].to_dict(),
        "speed": ok["mean_duration_ms"].to_dict(),
        "balanced": (weight * ok["mean_cost"] / max_cost + (1 - weight) * ok["mean_duration_ms"] / max_duration).to_dict(),
    }
    truth.optimum = {s: min(c, key=lambda m, c=c: (c[m], m)) for s, c in truth.criteria.items()}
    return truth


# --- repeats ---------------------------------------------------------------------------------------------

class ReplayInvoker:
    """The tuning ``Invoker`` over measured invocations: each call draws one (without replacement) for its size and payload.

    ``set_memory`` starts "fresh environments" as the protocol says: the next invocation carries an
    INIT drawn from that size's cold starts.
    """

    def __init__(self, pool: pd.DataFrame, profile: Profile, seed: int) -> None:
        self.mix = profile.mix
        self.rng = np.random.default_rng(seed)
        self.memory_mb: int | None = None
        self.cold = False
        warm = pool[pool["init_duration_ms"].isna()]
        self.warm = {key: rows.to_dict("records") for key, rows in warm.groupby(["memory_mb", "payload"])}
        self.inits = {int(m): rows["init_duration_ms"].astype(float).to_numpy()
                      for m, rows in pool[pool["init_duration_ms"].notna()].groupby("memory_mb")}
        self.order: dict[tuple[int, int], list[int]] = {}

    def _index(self, payload: Any) -> int:
        return next(i for i, p in enumerate(self.mix.payloads) if p == payload)

    def set_memory(self, memory_mb: int) -> None:
        self.memory_mb, self.cold = int(memory_mb), True

    def invoke(self, payload: Any) -> InvocationResult:
        key = (self.memory_mb, self._index(payload))
        rows = self.warm.get(key)
        if not rows:
            raise KeyError(f"no measured invocation at {key[0]} MB for payload {key[1]}; measure more")
        order = self.order.get(key)
        if not order:
            order = self.order[key] = list(self.rng.permutation(len(rows)))
        row = rows[order.pop()]
        init = None
        if self.cold and len(self.inits.get(self.memory_mb, [])):
            init = float(self.rng.choice(self.inits[self.memory_mb]))
        self.cold = False
        billed = math.ceil(row["duration_ms"] + (init or 0.0))
        return InvocationResult(row["duration_ms"], billed, init, row["max_memory_used_mb"], row["error"])

    def cleanup(self) -> None:
        pass


def one_repeat(make_invoker: Callable[[int], Any], profile: Profile, truth: Truth, strategy: str, budget: int,
               repeat: int, current_mb: int, values: Sequence[int], base: float) -> list[dict[str, Any]]:
    """The adaptive method and the tool's exhaustive method at one budget; one row each."""
    rows = []
    adaptive = adaptive_power_tuning(make_invoker(repeat), values, profile.payload, strategy=strategy,
                                     max_invocations=budget, current_mb=current_mb, base_cost=base, seed=repeat)
    decision = adaptive.decision
    # Its answer: the recommended size, the current one when it says keep, its best estimate when it cannot tell.
    answer = decision.choice_mb if decision.status is Status.INSUFFICIENT_DATA else decision.recommended_mb
    rows.append(_score("adaptive", answer, decision.status.value, decision.recommended_mb, truth,
                       strategy, adaptive.invocations_used))
    per_size = max(budget // len(values), 1)
    try:
        tool = run_power_tuning(make_invoker(10_000 + repeat), values, per_size, profile.tool_payload(),
                                strategy=strategy, base_cost=base)
        rows.append(_score("power-tuning", tool.memory_mb, Status.RECOMMEND.value, tool.memory_mb, truth, strategy,
                           per_size * len(values)))
    except Exception as error:  # noqa: BLE001 - the tool refusing a budget (weights too small) is a result
        rows.append({"method": "power-tuning", "choice_mb": None, "status": f"refused: {error}", "within": False,
                 "outcome_within": False,
                     "wrong_recommend": False, "bad_recommend": False, "off_by": math.nan,
                     "invocations": per_size * len(values)})
    for row in rows:
        row.update(profile=profile.name, strategy=strategy, budget=budget, repeat=repeat)
    return rows


def _score(method: str, choice: int, status: str, recommended: int, truth: Truth, strategy: str,
           invocations: int) -> dict[str, Any]:
    off = truth.off_by(strategy, choice)
    off_recommended = truth.off_by(strategy, recommended)
    recommends = status == Status.RECOMMEND.value
    outcome = recommended if recommends else None          # the size after following the advice (None: unchanged)
    return {"method": method, "choice_mb": choice, "status": status, "within": off <= WITHIN,
            "outcome_within": (truth.off_by(strategy, outcome) if outcome is not None else truth.current_off[strategy])
            <= WITHIN,
            "wrong_recommend": recommends and off_recommended > WITHIN,
            "bad_recommend": recommends and (off_recommended > WRONG_BY or recommended < truth.floor_mb),
            "off_by": off, "invocations": invocations}


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per profile, strategy, budget and method: shares within 2%, wrong recommends, bad recommends, statuses."""
    grouped = rows.groupby(["profile", "strategy", "budget", "method"], sort=False)
    out = grouped.agg(repeats=("within", "size"), within_2pct=("within", "mean"),
                      outcome_within_2pct=("outcome_within", "mean"),
                      wrong_recommend=("wrong_recommend", "mean"), bad_recommends=("bad_recommend", "sum"),
                      recommend=("status", lambda s: float((s == "recommend").mean())),
                      keep=("status", lambda s: float((s == "keep").mean())),
                      insufficient=("status", lambda s: float((s == "insufficient-data").mean())),
                      invocations=("invocations", "mean")).reset_index()
    return out


# --- main ---------------------------------------------------------------------------------------------------

def run(profiles: Sequence[Profile], *, truth_n: int, pool_n: int, repeats: int, strategies: Sequence[str],
        current_mb: int, values: Sequence[int] = DEFAULT_POWER_VALUES, live: bool = False, seed: int = 0,
        progress: Callable[[str], None] = print, records_dir: Path | None = None) -> dict[str, Any]:
    """Measure, establish the truth, run the repeats; return the truths, every repeat's row and the summary.

    With ``records_dir``, each profile's measurements are saved there (``<module>.csv``) and read
    back on the next run instead of measuring again, so the repeats can be rerun on the same data.
    """
    base = base_cost_per_ms()
    budgets = [SWEEP * a // b for a, b in BUDGET_SHARES]
    truths, all_rows = {}, []
    with Sandbox(idle_expiry_s=600) as sandbox:
        for profile in profiles:
            started = time.perf_counter()
            saved = records_dir / f"{profile.module}.csv" if records_dir else None
            if saved is not None and saved.is_file():
                records = pd.read_csv(saved).replace({np.nan: None})
                records["init_duration_ms"] = pd.to_numeric(records["init_duration_ms"])
                progress(f"  read {len(records):,} measured invocations of {profile.name} from {saved}")
            else:
                records = measure_profile(sandbox, profile, values, truth_n + pool_n, progress)
                if saved is not None:
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    records.to_csv(saved, index=False)
            truth_records, pool = split(records, truth_n, seed)
            truth = truths[profile.name] = true_behaviour(truth_records, profile, base)
            truth.current_off = {s: truth.off_by(s, current_mb) for s in truth.optimum}
            progress(f"  {profile.name}: floor {truth.floor_mb:.0f} MB; optimum " +
                     ", ".join(f"{s} {m} MB" for s, m in truth.optimum.items()))
            if live:
                def make(repeat: int, profile: Profile = profile) -> Any:
                    return SandboxInvoker(_config(profile, current_mb, f"-live{repeat % 2}"), sandbox=sandbox)
            else:
                def make(repeat: int, pool: pd.DataFrame = pool, profile: Profile = profile) -> Any:
                    return ReplayInvoker(pool, profile, seed=seed * 1_000_003 + repeat)
            for strategy in strategies:
                for budget in budgets:
                    for repeat in range(repeats):
                        all_rows.extend(one_repeat(make, profile, truth, strategy, budget, repeat, current_mb, values,
                                                   base))
            progress(f"  {profile.name}: done in {time.perf_counter() - started:.0f} s")
    rows = pd.DataFrame(all_rows)
    return {"truths": truths, "rows": rows, "summary": summarize(rows), "budgets": budgets}


def _print(result: dict[str, Any], current_mb: int) -> None:
    print("\nTrue behaviour (truth half; cost in USD per million invocations, duration in ms; * = not eligible)")
    for name, truth in result["truths"].items():
        table = truth.table
        cells = [f"{int(r.memory_mb)}{'' if r.eligible else '*'}: {r.mean_cost * 1e6:.2f} / {r.mean_duration_ms:.0f}"
                 for r in table.itertuples()]
        print(f"- {name} (floor {truth.floor_mb:.0f} MB): " + "; ".join(cells))
        print("  optimum: " + ", ".join(f"{s} {m} MB" for s, m in truth.optimum.items())
              + f"; the current {current_mb} MB is off by "
              + ", ".join(f"{truth.off_by(s, current_mb):+.1%} ({s})" for s in truth.optimum))
    summary = result["summary"]
    print("\nWithin 2% of the optimum (share of repeats: the answer; 'after': the size run after following the advice, "
          "the current one unless it says recommend), wrong recommends (share), bad recommends (count: >10% off "
          "or below the floor)")
    header = f"{'profile':<16}{'strategy':<10}{'budget':>7}  {'PT within':>9} {'ours within':>11} {'ours after':>10}  " \
             f"{'PT wrong':>8} {'ours wrong':>10}  {'PT bad':>6} {'ours bad':>8}  {'ours: rec/keep/insuff':>22} {'ours used':>9}"
    print(header)
    for (profile, strategy, budget), group in summary.groupby(["profile", "strategy", "budget"], sort=False):
        by = group.set_index("method")
        pt, ours = by.loc["power-tuning"], by.loc["adaptive"]
        print(f"{profile:<16}{strategy:<10}{budget:>7}  {pt.within_2pct:>9.0%} {ours.within_2pct:>11.0%} "
              f"{ours.outcome_within_2pct:>10.0%}  "
              f"{pt.wrong_recommend:>8.0%} {ours.wrong_recommend:>10.0%}  {int(pt.bad_recommends):>6} "
              f"{int(ours.bad_recommends):>8}  {ours.recommend:>7.0%}/{ours.keep:.0%}/{ours.insufficient:.0%}"
              f"{ours.invocations:>12.0f}")
    ours = summary[summary["method"] == "adaptive"]
    pt = summary[summary["method"] == "power-tuning"].set_index(["profile", "strategy", "budget"])
    third = max(result["budgets"])
    at_third = ours[ours["budget"] == third]
    beats = all(r.within_2pct >= pt.loc[(r.profile, r.strategy, r.budget), "within_2pct"] for r in ours.itertuples())
    print(f"\nTargets: within 2% at 1/3 of the sweep >= 90%: worst {at_third['within_2pct'].min():.0%} "
          f"({'met' if at_third['within_2pct'].min() >= 0.9 else 'NOT met'}); at least the tool's accuracy at every "
          f"budget: {'met' if beats else 'NOT met'}; bad recommends: {int(ours['bad_recommends'].sum())} "
          f"(tool: {int(pt['bad_recommends'].sum())}); after following the advice, within 2% at 1/3: worst "
          f"{at_third['outcome_within_2pct'].min():.0%}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 + 40 invocations per size, 3 repeats, cost strategy")
    parser.add_argument("--truth", type=int, default=200, help="invocations per size for the truth")
    parser.add_argument("--pool", type=int, default=80, help="more invocations per size, held out for the repeats")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--profiles", default=None, help="comma-separated module names, e.g. cpu_io,bimodal")
    parser.add_argument("--strategies", default="cost,speed,balanced")
    parser.add_argument("--current-mb", type=int, default=1024, help="the size the functions run with now")
    parser.add_argument("--live", action="store_true", help="run the repeats in the sandbox instead of replaying")
    parser.add_argument("--json", default=None, help="write the summary and the truths here")
    parser.add_argument("--records", default=None,
                        help="a folder: save each profile's measurements there, or reuse them when present")
    args = parser.parse_args(argv)
    if args.quick:
        args.truth, args.pool, args.repeats = 60, 40, 3
        args.strategies = "cost"
    chosen = [p for p in PROFILES if args.profiles is None or p.module in args.profiles.split(",")]
    strategies = [Strategy(s).value for s in args.strategies.split(",")]
    started = time.perf_counter()
    print(f"recommendation accuracy in the sandbox: {len(chosen)} profiles x {len(strategies)} strategies, truth "
          f"{args.truth}/size, pool {args.pool}/size, {args.repeats} repeats ({'live' if args.live else 'replayed'})")
    result = run(chosen, truth_n=args.truth, pool_n=args.pool, repeats=args.repeats, strategies=strategies,
                 current_mb=args.current_mb, live=args.live, records_dir=Path(args.records) if args.records else None)
    _print(result, args.current_mb)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "summary": result["summary"].to_dict(orient="records"),
            "truths": {n: {"floor_mb": t.floor_mb, "optimum": t.optimum, "table": t.table.to_dict(orient="records")}
                       for n, t in result["truths"].items()}}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

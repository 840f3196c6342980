"""Benchmark: invocations adaptive tuning needs to reach the full sweep's cost-strategy choice.

The full sweep is aws-lambda-power-tuning's: 6 power values x 50 invocations = 300. The
adaptive run (``workbook.tuning.adaptive_power_tuning``) fits the duration-vs-memory model
and measures more only where the choice is uncertain; it also says whether the choice is worth a
change from the current size (here the largest): recommend, keep or insufficient-data. Target: the
same choice in at most 100 invocations (a third of the sweep). Prints figures; asserts nothing
about time. ``bench/recommend_accuracy.py`` measures accuracy against a known truth instead.

Two workloads: CPU-bound only, whose cost Lambda's pricing makes flat below one vCPU (so any
choice is a near-tie and the sweep's own choice is noise: a second sweep per run shows how
often two sweeps agree), and CPU-bound plus a 100 ms wait that no CPU speeds up, whose
cheapest size is clear. The function is CPU-bound (a fixed amount of pure-Python work per invocation) and runs in the
local sandbox (``workbook.local.sandbox.Sandbox``: fresh interpreters, CPU share in proportion
to memory through cgroup CFS quota or SIGSTOP/SIGCONT duty-cycling). The sandbox has no
tuning ``Invoker`` of its own in older trees, so ``SandboxInvoker`` below adapts ``Sandbox.invoke`` to the
``workbook.tuning.Invoker`` protocol (the sandbox's own ``workbook.tuning.sandbox_invoker.SandboxInvoker``
is used when present; it starts fresh environments at each ``set_memory``). ``--simple`` uses a subprocess invoker instead (CPU time
measured in a child process, scaled by Lambda's CPU share: no sandbox needed).

    .venv/bin/python bench/tuning.py [--repeats 3] [--work 20] [--simple]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbook import tuning
from workbook.tuning import InvocationResult

POWER_VALUES = (128, 256, 512, 1024, 1536, 3008)
HANDLER = textwrap.dedent('''
    import json
    import time

    def handler(event, context):
        # CPU-bound: a fixed amount of pure-Python work (event["work"] rounds of 20,000 multiplications),
        # after an optional wait that no CPU share speeds up (event["wait_ms"], as an I/O call would be)
        time.sleep(float(event.get("wait_ms", 0)) / 1000.0)
        total = 0
        for _ in range(int(event.get("work", 20))):
            x = 1
            for i in range(20_000):
                x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            total += x
        return {"total": total}
''')


class SandboxInvoker:
    """``tuning.Invoker`` over the local sandbox: memory per call, fresh environments on demand."""

    def __init__(self, sandbox, name: str) -> None:
        self.sandbox = sandbox
        self.name = name
        self.memory_mb: int | None = None

    def set_memory(self, memory_mb: int) -> None:
        self.memory_mb = int(memory_mb)

    def invoke(self, payload) -> InvocationResult:
        outcome = self.sandbox.invoke(self.name, payload, memory_mb=self.memory_mb)
        report = outcome.report
        if report is None:
            return InvocationResult(math.nan, math.nan, None, None, outcome.error_type or "no REPORT")
        return InvocationResult(report.duration_ms, report.billed_duration_ms, report.init_duration_ms,
                                report.max_memory_used_mb, outcome.function_error)

    def cleanup(self) -> None:
        self.sandbox.expire_idle()


class SubprocessInvoker:
    """A simple stand-in: runs the handler's work in a child process, scales its CPU time by Lambda's share."""

    def __init__(self) -> None:
        self.memory_mb = 128

    def set_memory(self, memory_mb: int) -> None:
        self.memory_mb = int(memory_mb)

    def invoke(self, payload) -> InvocationResult:
        code = HANDLER + "\nimport time, json, sys\nt=time.process_time(); handler(json.loads(sys.argv[1]), None)\nprint(time.process_time()-t)"
        cpu_s = float(subprocess.run([sys.executable, "-c", code, json.dumps(payload)], capture_output=True, text=True,
                                     check=True).stdout)
        share = min(self.memory_mb / 1769, 6.0)
        # single-threaded: no gain past one vCPU
        duration_ms = 2.0 + float(payload.get("wait_ms", 0)) + cpu_s * 1000 / min(share, 1.0)
        return InvocationResult(duration_ms, math.ceil(duration_ms), None, 40.0, None)

    def cleanup(self) -> None:
        pass


def make_sandbox(workdir: Path):
    from workbook.local.sandbox import FunctionConfig, Sandbox
    from workbook.local.sandbox.limits import detect

    (workdir / "cpu_bound.py").write_text(HANDLER)
    sandbox = Sandbox(idle_expiry_s=600)
    sandbox.register(FunctionConfig(key="cpu-bound", function_name="bench-cpu-bound", memory_mb=128, timeout_s=60,
                                    handler="cpu_bound.handler", environment={}, code_paths=(str(workdir),)))
    try:
        mode = detect()
    except Exception as exc:  # noqa: BLE001 - only for the printout
        mode = f"unknown ({exc})"
    return sandbox, mode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="full sweep + adaptive pairs per workload")
    parser.add_argument("--work", type=int, default=10, help="rounds of CPU work per invocation")
    parser.add_argument("--wait-ms", type=float, default=100.0, help="the I/O wait of the second workload")
    parser.add_argument("--simple", action="store_true", help="use the subprocess invoker instead of the sandbox")
    args = parser.parse_args()
    workloads = (("CPU-bound only", {"work": args.work}),
                 (f"CPU-bound + {args.wait_ms:.0f} ms wait", {"work": args.work, "wait_ms": args.wait_ms}))
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = None
        if args.simple:
            make = SubprocessInvoker
            where = "subprocess invoker (CPU time scaled by Lambda's CPU share)"
        else:
            try:
                sandbox, mode = make_sandbox(Path(tmp))
            except ImportError as exc:
                print(f"local sandbox unavailable ({exc}); using the subprocess invoker")
                make, where = SubprocessInvoker, "subprocess invoker"
            else:
                cpu = mode[0].value if isinstance(mode, tuple) else mode
                try:  # the sandbox's own invoker (workbook.tuning.sandbox_invoker), in process on this sandbox
                    from workbook.tuning.sandbox_invoker import SandboxInvoker as LocalInvoker

                    config = sandbox.function("cpu-bound")
                    make = lambda: LocalInvoker(config, sandbox=sandbox)
                    where = f"local sandbox through workbook.tuning.sandbox_invoker.SandboxInvoker (CPU: {cpu})"
                except ImportError:
                    make = lambda: SandboxInvoker(sandbox, "cpu-bound")
                    where = f"local sandbox through this bench's adapter (CPU: {cpu})"
        print(f"adaptive vs full power tuning (6 values x 50), cost strategy, in the {where}")
        try:
            for label, payload in workloads:
                agree, used, regrets, sweep_choices, sweep_agree = 0, [], [], [], 0
                print(f"- workload: {label}")
                for repeat in range(args.repeats):
                    t0 = time.perf_counter()
                    full = tuning.run_power_tuning(make(), POWER_VALUES, 50, payload, strategy="cost")
                    t_full = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    adaptive = tuning.adaptive_power_tuning(make(), POWER_VALUES, payload, strategy="cost", seed=repeat)
                    t_adaptive = time.perf_counter() - t0
                    costs = full.analysis.table.set_index("memory_mb")["average_cost_usd"]
                    regret = costs[adaptive.memory_mb] / costs[full.memory_mb] - 1
                    same = adaptive.memory_mb == full.memory_mb
                    agree += same
                    used.append(adaptive.invocations_used)
                    regrets.append(regret)
                    sweep_choices.append(full.memory_mb)
                    # A second sweep measures the noise floor: how often two full sweeps agree.
                    second = tuning.run_power_tuning(make(), POWER_VALUES, 50, payload, strategy="cost")
                    sweep_agree += second.memory_mb == full.memory_mb
                    sweep_choices.append(second.memory_mb)
                    means = full.analysis.table.set_index("memory_mb")["average_duration_ms"].round(1).to_dict()
                    print(f"  run {repeat + 1}: sweep 300 invocations -> {full.memory_mb} MB ({t_full:.0f} s); "
                          f"trimmed means (ms) {means}")
                    status = adaptive.decision.status.value if adaptive.decision else "-"
                    print(f"         adaptive {adaptive.invocations_used} invocations -> {adaptive.memory_mb} MB, {status} "
                          f"(confidence {adaptive.confidence:.2f}, pruned {adaptive.pruned}, {t_adaptive:.0f} s): "
                          f"{'same' if same else 'different'}; its cost per the sweep: {regret:+.1%}")
                print(f"  summary: same choice in {agree}/{args.repeats} runs with {min(used)}-{max(used)} invocations "
                      f"({max(used) / 300:.0%} of the sweep at most; target <= 33%); worst cost difference {max(regrets):+.1%}; "
                      f"two full sweeps agreed in {sweep_agree}/{args.repeats} runs (second sweeps chose {sweep_choices[1::2]})")
        finally:
            if sandbox is not None:
                sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The sandbox behaves like Lambda: CPU share, memory limit, timeout, concurrency, warm reuse.

The only timing assertions are the ratios the issue asks for, between measurements of one run.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

import pytest
from local_helpers import make_config

from infra import specs
from workbook.local.sandbox import LogFormat, Sandbox, Status, limits
from workbook.logs import parse_reports

pytestmark = pytest.mark.timeout(180)


@dataclass(frozen=True)
class _Share:
    """A warm CPU-bound invocation's CPU share, from the environment's own cgroup and process."""

    quota_vcpus: float
    achieved: float      # CPU time / wall time: load from other work can only lower it
    enforced: float      # CPU time / (CPU time + time the quota throttled it): load lowers neither term
    throttled_periods: int


def _measure_share(sandbox: Sandbox, memory: int, wall_s: float = 1.2) -> _Share:
    """Run a single-threaded CPU-bound loop warm at ``memory`` MB and read the kernel's counters.

    The loop runs about ``wall_s`` at Lambda's share (capped at the one vCPU a thread can use),
    some 24 CFS periods, so the quota left over in the period an invocation starts in adds at
    most a few percent.
    """
    name = f"lwb-test-share-{memory}"
    sandbox.register(make_config("cpu_bound", memory, 60, name=name))
    sandbox.invoke(name, {"iterations": 1000})              # INIT runs boosted; the share applies after it
    environment = sandbox.idle_environments(name)[0]
    iterations = int(wall_s * min(specs.vcpus_for(memory), 1.0) * ITERATIONS_PER_CPU_S)
    before = environment.limits.cpu_stats()
    outcome = sandbox.invoke(name, {"iterations": iterations})
    after = environment.limits.cpu_stats()
    cpu_ms, wall_ms = outcome.json()["cpu_ms"], outcome.report.duration_ms
    throttled_ms = (after.throttled_ns - before.throttled_ns) / 1e6
    return _Share(after.quota_vcpus, cpu_ms / wall_ms, cpu_ms / (cpu_ms + throttled_ms),
                  after.throttled_periods - before.throttled_periods)


def _share_problems(sandbox: Sandbox, memory: int, wall_s: float = 1.2, measured: _Share | None = None) -> list[str]:
    """What is wrong with the CPU share of a warm CPU-bound invocation at ``memory`` MB, measured by the kernel.

    - achieved share must not exceed Lambda's share: a quota that is too generous fails here.
    - enforced share must not fall below it: a quota that is too tight fails here.
    Waiting for a busy CPU is in neither term of the enforced share, so load cannot fail it.
    """
    share = specs.vcpus_for(memory)
    measured = measured or _measure_share(sandbox, memory, wall_s)
    problems = []
    if abs(measured.quota_vcpus / share - 1) > 0.02:
        problems.append(f"{memory} MB: quota {measured.quota_vcpus:.3f} vCPU, Lambda gives {share:.3f}")
    if measured.achieved > share * 1.15:
        problems.append(f"{memory} MB: used {measured.achieved:.3f} vCPU, more than Lambda's {share:.3f}")
    if measured.enforced < share * 0.85:
        problems.append(f"{memory} MB: held to {measured.enforced:.3f} vCPU, less than Lambda's {share:.3f}")
    if measured.throttled_periods <= 0:
        problems.append(f"{memory} MB: the quota never throttled a CPU-bound loop")
    return problems


def _held_back(sandbox: Sandbox, memory: int, wall_s: float = 1.0) -> dict[str, float]:
    """A warm CPU-bound invocation at ``memory`` MB: the share of its wall time it ran (achieved) and the
    share it was held back (stopped), from its own clocks and the kernel's run-queue wait."""
    name = f"lwb-test-held-{memory}"
    sandbox.register(make_config("cpu_bound", memory, 60, name=name))
    sandbox.invoke(name, {"iterations": 1000})              # INIT runs unthrottled; measure warm
    iterations = int(wall_s * min(specs.vcpus_for(memory), 1.0) * ITERATIONS_PER_CPU_S)
    figures = sandbox.invoke(name, {"iterations": iterations}).json()
    wall = figures["wall_ms"]
    return {"achieved": figures["cpu_ms"] / wall,
            "stopped": max(wall - figures["cpu_ms"] - figures["waited_ms"], 0.0) / wall}


CFS = limits.detect()[0] is limits.CpuMode.CFS_QUOTA
ITERATIONS_PER_CPU_S = 14_000_000   # the cpu_bound loop, about 70 ns an iteration on one of these vCPUs


@pytest.mark.skipif(not CFS, reason="needs a writable cgroup v1 cpu controller (root); the fallback is tested below")
def test_cpu_share_follows_memory_as_the_kernel_measures_it(sandbox):
    # GIVEN a single-threaded CPU-bound function at 256, 512 and 1,024 MB (below one vCPU)
    # WHEN it runs warm
    # THEN its cgroup holds it to 1,769/memory of a vCPU: never more, and never less but for load
    problems = [p for memory in (256, 512, 1024) for p in _share_problems(sandbox, memory)]
    assert problems == []


@pytest.mark.skipif(not CFS, reason="needs a writable cgroup v1 cpu controller (root)")
def test_the_share_check_fails_when_the_quota_is_wrong(sandbox, monkeypatch):
    # GIVEN a sandbox whose quota is twice or half what Lambda gives
    # THEN the same measurement reports it, whatever the load on the machine
    monkeypatch.setattr(limits, "vcpus_for", lambda memory: 2 * specs.vcpus_for(memory))
    assert any("more than Lambda's" in p for p in _share_problems(sandbox, 256))
    monkeypatch.setattr(limits, "vcpus_for", lambda memory: 0.5 * specs.vcpus_for(memory))
    tight = _measure_share(sandbox, 512)
    if tight.achieved < 0.8 * 0.5 * specs.vcpus_for(512):
        # Other work kept the loop from using even the halved quota, so the kernel never had to
        # throttle it: a quota that is too tight cannot show now (seen once with four workers busy).
        pytest.skip(f"the machine starved the loop below the halved quota (used {tight.achieved:.3f} vCPU)")
    assert any("less than Lambda's" in p for p in _share_problems(sandbox, 512, measured=tight)), tight


@pytest.mark.skipif(not CFS, reason="needs a writable cgroup v1 cpu controller (root); the fallback is tested below")
def test_more_than_one_vcpu_buys_nothing_for_single_threaded_code(sandbox):
    # GIVEN the same single-threaded CPU-bound function at one vCPU (1,769 MB) and at 3,008 MB
    one, more = _measure_share(sandbox, 1769), _measure_share(sandbox, 3008)
    # THEN at 1,769 MB the quota is one whole vCPU and the kernel barely holds the thread back,
    # so no quota above it can run the thread any faster ...
    assert abs(one.quota_vcpus - 1.0) <= 0.02 and one.enforced >= 0.85, one
    # ... and at 3,008 MB the quota is larger, yet the thread still uses at most one vCPU
    assert more.quota_vcpus > 1.6 and more.enforced >= 0.85 and more.achieved <= 1.15, more
    # AND 512 MB holds the same thread to its 0.29 vCPU (the kernel's counters, not the wall clock;
    # durations at each size are figures in bench/sandbox.py, not asserts)
    assert _share_problems(sandbox, 512) == []


def test_allocating_past_memory_size_is_out_of_memory_and_replaces_the_environment(sandbox):
    # GIVEN a 256 MB function that is warm
    sandbox.register(make_config("allocator", 256, 30))
    first = sandbox.invoke("allocator", {"megabytes": 32})
    warm = sandbox.invoke("allocator", {"megabytes": 32})
    assert first.cold_start and not warm.cold_start and warm.ok
    # WHEN it allocates 512 MB
    oom = sandbox.invoke("allocator", {"megabytes": 512})
    # THEN the invocation ends as Runtime.OutOfMemory, reported as Lambda reports it
    assert oom.function_error == "Unhandled"
    assert oom.json()["errorType"] == "Runtime.OutOfMemory"
    assert oom.report.status is Status.ERROR and oom.report.error_type == "Runtime.OutOfMemory"
    assert "Status: error\tError Type: Runtime.OutOfMemory" in oom.log_lines[-1]
    assert oom.report.max_memory_used_mb == 256
    # AND the environment is replaced: the next invocation is a cold start in a new process
    after = sandbox.invoke("allocator", {"megabytes": 16})
    assert after.ok and after.cold_start and after.report.init_duration_ms is not None


def test_timeout_ends_the_invocation_on_time_and_logs_it_as_lambda_does(sandbox):
    # GIVEN a function with a 1 s timeout that sleeps 30 s
    sandbox.register(make_config("sleeper", 512, 1))
    outcome = sandbox.invoke("sleeper", {"seconds": 30})
    # THEN it is ended at its timeout, not after its sleep (ratio of the two, not a wall-clock bound)
    assert outcome.report.status is Status.TIMEOUT
    assert outcome.report.duration_ms / 30_000 < 0.2
    assert outcome.report.duration_ms >= 1000
    # AND the log has the function's own line, the timeout line, END and a REPORT with Status: timeout
    lines = outcome.log_lines
    assert any(line.startswith("sleeping 30") for line in lines)
    assert any(line.endswith(f"{outcome.request_id} Task timed out after 1.00 seconds") for line in lines)
    assert f"END RequestId: {outcome.request_id}" in lines
    assert lines[-1].startswith(f"REPORT RequestId: {outcome.request_id}\tDuration: ")
    assert "\tStatus: timeout" in lines[-1]
    assert outcome.json()["errorType"] == "Sandbox.Timedout"
    # AND the next invocation gets a fresh environment
    assert sandbox.invoke("sleeper", {"seconds": 0}).cold_start


def test_a_timed_out_run_reports_its_own_peak_memory_not_the_last_replys(sandbox):
    # GIVEN a warm 512 MB function whose last completed invocation used little memory
    sandbox.register(make_config("allocator", 512, 2))
    small = sandbox.invoke("allocator", {"megabytes": 16})
    # (the function's own memory: not the resident size of the process that spawned the runtime)
    assert small.ok and small.report.max_memory_used_mb < 96, small.log_lines[-1]
    # WHEN an invocation touches 192 MB more (the known answer) and then runs past its timeout
    killed = sandbox.invoke("allocator", {"megabytes": 192, "sleep_s": 30})
    # THEN the REPORT is a timeout whose Max Memory Used covers what the killed run held
    assert killed.report.status is Status.TIMEOUT
    assert 192 <= killed.report.max_memory_used_mb < 512, killed.log_lines[-1]
    assert f"Max Memory Used: {killed.report.max_memory_used_mb} MB" in killed.log_lines[-1]


def test_reserved_concurrency_throttles_the_excess(sandbox):
    # GIVEN a function with reserved concurrency 2
    sandbox.register(make_config("sleeper", 256, 30, reserved=2))
    outcomes = []
    lock = threading.Lock()

    def call() -> None:
        outcome = sandbox.invoke("sleeper", {"seconds": 1.5})
        with lock:
            outcomes.append(outcome)

    # WHEN five invocations arrive at once
    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN two run and three are throttled (TooManyRequestsException, Throttles metric)
    throttled = [o for o in outcomes if o.throttled]
    ran = [o for o in outcomes if not o.throttled]
    assert len(ran) == 2 and len(throttled) == 3
    assert all(o.status_code == 429 and o.error_type == "TooManyRequestsException" for o in throttled)
    assert sum(1 for s in sandbox.telemetry.metric_samples if s[1] == "Throttles") == 3


def test_warm_reuse_and_cold_scale_out(sandbox):
    # GIVEN an idle function
    sandbox.register(make_config("echo", 256, 10))
    cold = sandbox.invoke("echo", {"n": 1})
    warm = sandbox.invoke("echo", {"n": 2})
    # THEN the second invocation reuses the environment (same process, no Init Duration)
    assert cold.cold_start and cold.report.init_duration_ms is not None
    assert not warm.cold_start and warm.report.init_duration_ms is None
    assert warm.json()["pid"] == cold.json()["pid"]
    # WHEN three invocations run concurrently
    sandbox.register(make_config("sleeper", 256, 10, name="lwb-test-scale"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(sandbox.invoke("lwb-test-scale", {"seconds": 1})))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN each runs in its own new environment: three cold starts, three warm environments after
    assert sum(o.cold_start for o in results) == 3
    assert sandbox.warm_environments("lwb-test-scale") == 3


def test_idle_environments_are_frozen_between_invocations(sandbox):
    # GIVEN a function whose INIT starts a background thread ticking every 10 ms
    sandbox.register(make_config("ticker", 512, 10))
    first = sandbox.invoke("ticker", {}).json()
    threading.Event().wait(0.5)
    second = sandbox.invoke("ticker", {}).json()
    # THEN its thread did not run while the environment was idle (Lambda freezes it):
    # far fewer ticks than the wall-clock time between the two invocations allows
    possible_ticks = (second["at"] - first["at"]) / 0.01
    assert second["ticks"] - first["ticks"] < 0.25 * possible_ticks, (first, second)


def test_idle_environments_expire():
    with Sandbox(idle_expiry_s=1.0) as box:
        box.register(make_config("echo", 256, 10))
        first = box.invoke("echo", {})
        assert box.warm_environments("echo") == 1
        # the reaper runs every idle_expiry/4; wait on it rather than on the clock
        done = threading.Event()
        for _ in range(100):
            if box.warm_environments("echo") == 0:
                done.set()
                break
            done.wait(0.1)
        assert done.is_set()
        assert box.invoke("echo", {}).cold_start and first.cold_start


def test_function_error_init_error_and_the_environment_contract(sandbox):
    # GIVEN functions that raise, fail at import, and echo their environment
    sandbox.register(make_config("failing", 256, 10))
    sandbox.register(make_config("broken_import", 256, 10))
    sandbox.register(make_config("echo", 384, 10, environment={"WORKBOOK_ENV": "local"}))
    failed = sandbox.invoke("failing", {"message": "bad input"})
    assert failed.function_error == "Unhandled"
    body = failed.json()
    assert body["errorType"] == "PoisonError" and body["errorMessage"] == "bad input"
    assert all("runtime.py" not in frame for frame in body["stackTrace"])
    assert any(line.startswith("[ERROR] PoisonError: bad input") for line in failed.log_lines)
    init_failed = sandbox.invoke("broken_import", {})
    assert init_failed.function_error == "Unhandled" and init_failed.json()["errorType"] == "RuntimeError"
    assert any(line.startswith("INIT_REPORT Init Duration: ") and line.endswith("Error Type: RuntimeError")
               for line in init_failed.log_lines)
    echo = sandbox.invoke("echo", {"show_environment": True}).json()
    variables = echo["environment"]
    # THEN the function sees its own variables plus Lambda's reserved ones, and nothing of ours
    assert variables["WORKBOOK_ENV"] == "local"
    for name in ("AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_SESSION_TOKEN",
                 "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "_HANDLER", "_X_AMZN_TRACE_ID"):
        assert name in variables, name
    assert variables["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "384"
    assert variables["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert not any(name.startswith(("WORKBOOK_STATE", "PYTEST", "VIRTUAL_ENV")) for name in variables)
    assert echo["memory_limit_in_mb"] == "384" and 0 < echo["remaining_ms"] <= 10_000


def test_reports_parse_with_the_loaders_in_both_formats(sandbox):
    # GIVEN the same function in the text and the JSON log format
    sandbox.register(make_config("echo", 256, 10, name="lwb-test-text"))
    sandbox.register(make_config("echo", 256, 10, name="lwb-test-json", log_format=LogFormat.JSON))
    for name in ("lwb-test-text", "lwb-test-json"):
        sandbox.invoke(name, {})
        sandbox.invoke(name, {})
    lines = [message for _, _, _, message in sandbox.telemetry.events]
    # THEN workbook.logs reads every REPORT, with the cold start marked
    frame = parse_reports(lines, function="test")
    assert len(frame) == 4
    assert int(frame["cold_start"].sum()) == 2
    assert (frame["memory_size_mb"] == 256).all()
    json_lines = [json.loads(line) for line in lines if line.startswith('{"time"')]
    assert {record["type"] for record in json_lines} >= {"platform.initStart", "platform.start", "platform.report"}


def test_emf_lines_become_custom_metrics(sandbox):
    sandbox.register(make_config("failing", 256, 10))
    sandbox.invoke("failing", {"emf": True, "fail": False})
    widgets = [s for s in sandbox.telemetry.metric_samples if s[1] == "Widgets"]
    assert widgets == [("LambdaWorkbook", "Widgets", {"service": "failing"}, 3)]
    names = {s[1] for s in sandbox.telemetry.metric_samples if s[0] == "AWS/Lambda"}
    assert {"Invocations", "Errors", "Duration", "ConcurrentExecutions"} <= names


@pytest.mark.skipif(os.geteuid() != 0, reason="compares the cgroup mode with the fallback; needs root")
def test_duty_cycling_fallback_limits_cpu(monkeypatch):
    # GIVEN the unprivileged fallback (SIGSTOP/SIGCONT duty-cycling, RLIMIT_AS)
    monkeypatch.setenv("WORKBOOK_LOCAL_LIMITS", "fallback")
    monkeypatch.setattr(limits, "_parents", {})
    assert limits.detect() == (limits.CpuMode.DUTY_CYCLE, limits.MemoryMode.RLIMIT_AS)
    with Sandbox() as box:
        box.register(make_config("allocator", 256, 30))
        oom = box.invoke("allocator", {"megabytes": 1024})
        assert oom.json()["errorType"] == "Runtime.OutOfMemory"

        # WHEN the same single-threaded loop runs warm at 1,769 MB and at 512 MB
        # THEN at 512 MB it used at most its share of the wall time, and it was stopped for most of the
        # rest; at 1,769 MB (one vCPU) it was never stopped. "Stopped" is the wall time neither on a CPU
        # nor waiting for one (the kernel's run-queue wait), so load from other work moves neither figure
        # much: the duty cycle's own windows are wall time.
        held = {memory: _held_back(box, memory) for memory in (1769, 512)}
        assert held[1769]["stopped"] <= 0.10, held
        assert held[512]["achieved"] <= 1.25 * (512 / 1769), held
        assert held[512]["stopped"] >= 0.5 * (1 - 512 / 1769), held
    monkeypatch.setattr(limits, "_parents", {})

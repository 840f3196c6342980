"""Memory and CPU limits of an execution environment, as Lambda applies them.

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU, 10,240 MB six.
As root with cgroup v1 mounted read-write, each environment gets its own ``cpu`` cgroup (CFS
quota) and ``memory`` cgroup (hard limit; the kernel's OOM killer ends the environment, as on
Lambda). Otherwise the CPU share is enforced by SIGSTOP/SIGCONT duty-cycling and memory by
RLIMIT_AS, which is coarser: it limits address space, not resident memory.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from infra.specs import vcpus_for

INIT_VCPUS = 2.0
# Lambda reserves a function's CPU share; a shared machine does not. A high cpu.shares weight on
# the sandbox's cgroups lets an environment get its share even when other processes compete
# (the CFS quota still caps it at its share, so it never takes more).
SANDBOX_CPU_SHARES = 16_384
CGROUP_ROOT = Path(os.environ.get("WORKBOOK_CGROUP_ROOT", "/sys/fs/cgroup"))
# A 50 ms CFS period. Shorter periods lose accuracy at small shares: the quota is handed to
# CPUs in slices (sched_cfs_bandwidth_slice_us, 5 ms by default), and 128 MB of 50 ms is 3.6 ms.
# Longer periods make short invocations lumpy (a whole period's quota at once, then nothing).
# Lambda's own period is not published.
CFS_PERIOD_US = 50_000
DUTY_PERIOD_S = 0.020
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Address space a CPython process maps beyond what it touches (shared libraries, arenas, thread stacks).
RLIMIT_AS_SLACK_MB = 320


class CpuMode(str, Enum):
    """How the CPU share is enforced."""

    CFS_QUOTA = "cgroup-v1 cpu.cfs_quota_us"
    DUTY_CYCLE = "SIGSTOP/SIGCONT duty-cycling"


class MemoryMode(str, Enum):
    """How the memory limit is enforced."""

    CGROUP = "cgroup-v1 memory.limit_in_bytes"
    RLIMIT_AS = "RLIMIT_AS"



def _own_cgroup(controller: str) -> str:
    """This process's path in a cgroup v1 hierarchy (so environments nest under it)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path.lstrip("/")
    except OSError:
        pass
    return ""


def _writable_controller(controller: str, probe_file: str) -> Path | None:
    if os.environ.get("WORKBOOK_LOCAL_LIMITS") == "fallback":
        return None
    base = CGROUP_ROOT / controller
    if not (base / probe_file).exists():
        return None
    parent = base / _own_cgroup(controller) / "lwb"
    probe = parent / f"probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir(parents=True)
        (probe / probe_file).read_text()
        probe.rmdir()
        if controller == "cpu":
            (parent / "cpu.shares").write_text(str(SANDBOX_CPU_SHARES))
        return parent
    except OSError:
        return None


def detect() -> tuple[CpuMode, MemoryMode]:
    """Which enforcement this machine allows (root with cgroup v1, or the fallbacks)."""
    return (CpuMode.CFS_QUOTA if _cpu_parent() else CpuMode.DUTY_CYCLE,
            MemoryMode.CGROUP if _memory_parent() else MemoryMode.RLIMIT_AS)


_parents: dict[str, Path | None] = {}


def _cpu_parent() -> Path | None:
    if "cpu" not in _parents:
        _parents["cpu"] = _writable_controller("cpu", "cpu.cfs_quota_us")
    return _parents["cpu"]


def _memory_parent() -> Path | None:
    if "memory" not in _parents:
        _parents["memory"] = _writable_controller("memory", "memory.limit_in_bytes")
    return _parents["memory"]


@dataclass(frozen=True)
class CpuStats:
    """An environment's CPU quota (in vCPUs) and the kernel's counters from its ``cpu.stat``."""

    quota_vcpus: float
    periods: int
    throttled_periods: int
    throttled_ns: int


class EnvironmentLimits:
    """The limits of one execution environment; attach the process once it is spawned."""

    def __init__(self, memory_mb: int, name: str) -> None:
        self.memory_mb = memory_mb
        self.vcpus = vcpus_for(memory_mb)
        self.name = name
        cpu_parent, memory_parent = _cpu_parent(), _memory_parent()
        self.cpu_mode = CpuMode.CFS_QUOTA if cpu_parent else CpuMode.DUTY_CYCLE
        self.memory_mode = MemoryMode.CGROUP if memory_parent else MemoryMode.RLIMIT_AS
        self._cpu_group = cpu_parent / name if cpu_parent else None
        self._memory_group = memory_parent / name if memory_parent else None
        self._pid: int | None = None
        self._duty: _DutyCycle | None = None

    @property
    def rlimit_as_bytes(self) -> int:
        """The RLIMIT_AS the runtime sets on itself in fallback mode (0: none)."""
        if self.memory_mode is MemoryMode.CGROUP:
            return 0
        return (self.memory_mb + RLIMIT_AS_SLACK_MB) * 1024 * 1024

    def attach(self, pid: int) -> None:
        """Put a freshly spawned process under the limits; INIT runs with a two-vCPU boost."""
        self._pid = pid
        if self._memory_group is not None:
            self._memory_group.mkdir(exist_ok=True)
            limit = str(self.memory_mb * 1024 * 1024)
            (self._memory_group / "memory.limit_in_bytes").write_text(limit)
            try:
                (self._memory_group / "memory.memsw.limit_in_bytes").write_text(limit)
            except OSError:
                pass  # no swap accounting on this kernel
            (self._memory_group / "memory.swappiness").write_text("0")
            (self._memory_group / "cgroup.procs").write_text(str(pid))
        if self._cpu_group is not None:
            self._cpu_group.mkdir(exist_ok=True)
            (self._cpu_group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (self._cpu_group / "cpu.shares").write_text(str(max(int(SANDBOX_CPU_SHARES * min(self.vcpus, 1.0)), 2)))
            # INIT gets two vCPUs whatever the memory size (or the share, when larger), as on Lambda.
            init_quota_us = int(CFS_PERIOD_US * max(INIT_VCPUS, self.vcpus))
            (self._cpu_group / "cpu.cfs_quota_us").write_text(str(init_quota_us))
            (self._cpu_group / "cgroup.procs").write_text(str(pid))

    def throttle(self) -> None:
        """Apply the CPU share (after INIT; Lambda boosts the init phase)."""
        if self._cpu_group is not None:
            quota_us = max(int(CFS_PERIOD_US * self.vcpus), 1000)
            (self._cpu_group / "cpu.cfs_quota_us").write_text(str(quota_us))

    def cpu_stats(self) -> CpuStats | None:
        """The CFS quota in force and the kernel's throttling counters (cgroup mode only; else None)."""
        if self._cpu_group is None:
            return None
        try:
            quota = int((self._cpu_group / "cpu.cfs_quota_us").read_text())
            period = int((self._cpu_group / "cpu.cfs_period_us").read_text())
            counters = dict(line.split() for line in (self._cpu_group / "cpu.stat").read_text().splitlines())
        except (OSError, ValueError):
            return None
        return CpuStats(quota / period if quota > 0 else float("inf"), int(counters.get("nr_periods", 0)),
                        int(counters.get("nr_throttled", 0)), int(counters.get("throttled_time", 0)))

    def begin_invocation(self) -> None:
        if self.cpu_mode is CpuMode.DUTY_CYCLE and self.vcpus < 1.0 and self._pid:
            self._duty = _DutyCycle(self._pid, self.vcpus)
            self._duty.start()

    def end_invocation(self) -> None:
        if self._duty is not None:
            self._duty.stop()
            self._duty = None

    def out_of_memory(self) -> bool:
        """Whether the kernel's OOM killer acted in this environment's memory cgroup."""
        if self._memory_group is None:
            return False
        try:
            for line in (self._memory_group / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
            return int((self._memory_group / "memory.failcnt").read_text()) > 0 and \
                int((self._memory_group / "memory.max_usage_in_bytes").read_text()) >= self.memory_mb * 1024 * 1024
        except (OSError, ValueError):
            return False

    def release(self) -> None:
        """Remove the cgroups (the process must be gone)."""
        self.end_invocation()
        for group in (self._cpu_group, self._memory_group):
            if group is None:
                continue
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # the killed process is still leaving the group


class _DutyCycle(threading.Thread):
    """Runs a process for ``share`` of each period and stops it for the rest, by the CPU it used.

    The windows alone are wall time, and on a busy machine this thread wakes late: the process then
    ran past its window (it got 0.57 of a vCPU at 512 MB with the cores busy). So the thread keeps
    a budget of CPU time (the process's own, from ``/proc/<pid>/stat``): each period adds
    ``share`` x the wall time since the last look, capped at one window's worth so idle time buys
    no burst, and what the process used beyond it is paid back by a longer stop.
    """

    def __init__(self, pid: int, share: float) -> None:
        super().__init__(daemon=True, name=f"duty-{pid}")
        self.pid, self.share = pid, share
        self._stopped = threading.Event()

    def _cpu_s(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS   # utime + stime, all threads
        except (OSError, IndexError, ValueError):
            return None

    def run(self) -> None:
        on_s, off_s = DUTY_PERIOD_S * self.share, DUTY_PERIOD_S * (1 - self.share)
        budget, last_wall, last_cpu = 0.0, time.monotonic(), self._cpu_s()
        try:
            while not self._stopped.is_set():
                os.kill(self.pid, signal.SIGCONT)
                if self._stopped.wait(on_s):
                    break
                os.kill(self.pid, signal.SIGSTOP)
                now, cpu = time.monotonic(), self._cpu_s()
                if cpu is not None and last_cpu is not None:
                    budget = min(budget + self.share * (now - last_wall) - (cpu - last_cpu), on_s)
                last_wall, last_cpu = now, cpu
                # a stop of off_s earns share x off_s more; a debt takes longer to pay back
                pause = off_s if budget >= 0 else max(off_s, -budget / self.share)
                self._stopped.wait(pause)
        except ProcessLookupError:
            return
        finally:
            try:
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self._stopped.set()
        self.join()

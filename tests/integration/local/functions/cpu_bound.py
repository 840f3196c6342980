"""A single-threaded CPU-bound loop: its duration follows the CPU share.

Besides the CPU time, it reports its own wall time and the time it waited on a run queue (from
``/proc/thread-self/schedstat``, where the kernel has it): what remains of the wall time is the
time it was held back (stopped, or throttled), whatever other load the machine carried.
"""
import time


def _waited_ns() -> int:
    try:
        with open("/proc/thread-self/schedstat") as stats:
            return int(stats.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def handler(event, context):
    iterations = int(event.get("iterations", 2_000_000))
    waited, wall, started = _waited_ns(), time.monotonic(), time.process_time()
    total = 0
    for value in range(iterations):
        total += value * value % 7
    cpu_ms = (time.process_time() - started) * 1000
    return {"total": total, "cpu_ms": cpu_ms, "wall_ms": (time.monotonic() - wall) * 1000,
            "waited_ms": (_waited_ns() - waited) / 1e6}

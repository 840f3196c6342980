"""A single-threaded CPU-bound loop: its duration follows the CPU share."""
import time


def handler(event, context):
    iterations = int(event.get("iterations", 2_000_000))
    started = time.process_time()
    total = 0
    for value in range(iterations):
        total += value * value % 7
    return {"total": total, "cpu_ms": (time.process_time() - started) * 1000}

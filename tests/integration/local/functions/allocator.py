"""Allocates (and touches) memory in 16 MB steps until it holds ``megabytes``, then sleeps ``sleep_s`` (default 0)."""
import time


def handler(event, context):
    blocks = []
    for _ in range(int(event.get("megabytes", 64)) // 16):
        blocks.append(bytearray(16 * 1024 * 1024))
        blocks[-1][::4096] = b"x" * len(blocks[-1][::4096])
    time.sleep(float(event.get("sleep_s", 0)))
    return {"allocated_mb": 16 * len(blocks)}

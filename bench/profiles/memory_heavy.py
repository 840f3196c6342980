"""Memory-heavy: allocates and touches a buffer whose size the payload sets, so the peak depends on the payload.

A short wait first (a download, say), so small sizes are the cheapest: the floor, not the price, rules them out.
"""
import time

from work import spin

PAGE = 4096


def handler(event, context):
    time.sleep(float(event.get("wait_ms", 20)) / 1000.0)
    buffer = bytearray(int(event.get("mb", 20)) * 1024 * 1024)
    for offset in range(0, len(buffer), PAGE):      # touch every page: resident, and CPU work in proportion
        buffer[offset] = 1
    total = spin(event.get("rounds", 1))
    return {"bytes": len(buffer), "total": total}

"""CPU plus I/O wait: a wait no CPU share speeds up (as a downstream call is), then single-threaded work."""
import time

from work import spin


def handler(event, context):
    time.sleep(float(event.get("wait_ms", 40)) / 1000.0)
    return {"total": spin(event.get("rounds", 8))}

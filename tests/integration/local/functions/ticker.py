"""A background thread started at INIT counts ticks of 10 ms; the handler reports the count."""
import threading
import time

TICKS = [0]


def _tick() -> None:
    while True:
        time.sleep(0.01)
        TICKS[0] += 1


threading.Thread(target=_tick, daemon=True).start()


def handler(event, context):
    return {"ticks": TICKS[0], "at": time.time()}

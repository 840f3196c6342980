"""Sleeps ``seconds`` and prints a line before and after."""
import time


def handler(event, context):
    print(f"sleeping {event.get('seconds', 1)} s; remaining {context.get_remaining_time_in_millis()} ms")
    time.sleep(float(event.get("seconds", 1)))
    print("woke up")
    return {"slept_s": event.get("seconds", 1)}

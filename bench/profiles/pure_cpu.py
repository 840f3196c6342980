"""Pure CPU: a fixed amount of single-threaded work; faster with memory up to one vCPU (1,769 MB), then flat."""
from work import spin


def handler(event, context):
    return {"total": spin(event.get("rounds", 8))}

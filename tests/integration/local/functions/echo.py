"""Returns its event, the environment it sees, and the context's fields."""
import json
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)
INIT_PID = os.getpid()


def handler(event, context):
    logger.info("echo %s", json.dumps(event)[:200])
    return {
        "event": event,
        "pid": INIT_PID,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "environment": dict(os.environ) if event.get("show_environment") else None,
    }

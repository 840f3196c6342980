"""Fails at INIT: its module-level code raises."""
raise RuntimeError("cannot configure at import time")


def handler(event, context):
    return None

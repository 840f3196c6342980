"""Allocates (and touches) memory in 16 MB steps until it holds ``megabytes``."""


def handler(event, context):
    blocks = []
    for _ in range(int(event.get("megabytes", 64)) // 16):
        blocks.append(bytearray(16 * 1024 * 1024))
        blocks[-1][::4096] = b"x" * len(blocks[-1][::4096])
    return {"allocated_mb": 16 * len(blocks)}

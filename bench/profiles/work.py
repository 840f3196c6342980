"""Pure-Python CPU work shared by the synthetic profiles (the GIL holds: one core at most)."""
from __future__ import annotations


def spin(rounds: int) -> int:
    """``rounds`` x 20,000 multiplications of a linear congruential generator: about 1 ms per round on one core."""
    total = 0
    for _ in range(int(rounds)):
        x = 1
        for _ in range(20_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        total += x
    return total

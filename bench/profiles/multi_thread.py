"""Multi-threaded: SHA-256 over a buffer in several threads; hashlib releases the GIL, so more than one vCPU helps."""
import hashlib
import threading

_BUFFER = bytes(range(256)) * 4096          # 1 MiB


def _hash(rounds: int) -> None:
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(_BUFFER)


def handler(event, context):
    threads = [threading.Thread(target=_hash, args=(int(event.get("rounds", 6)),)) for _ in range(event.get("threads", 4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"threads": len(threads)}

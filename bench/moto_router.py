"""Benchmark: what moto_router.py (Lambda Invoke to the sandbox, the rest to moto) costs moto's other calls.

Prints a table; asserts nothing. Two moto servers on loopback, started the same way in the same
run: moto's own entry point (the baseline), and moto behind ``workbook/local/moto_router.py``.
Each answers ``--calls`` SQS GetQueueUrl requests, ``--repeat`` times; the figure is the median
time per call.

    .venv/bin/python bench/moto_router.py [--calls 200] [--repeat 5]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROUTER = Path(__file__).resolve().parent.parent / "workbook" / "local" / "moto_router.py"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def per_call_ms(command: list[str], port: int, calls: int, repeat: int) -> float:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        for _ in range(200):
            try:
                sqs.list_queues()
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                time.sleep(0.1)
        sqs.create_queue(QueueName="bench")
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(calls):
                sqs.get_queue_url(QueueName="bench")
            runs.append((time.perf_counter() - started) / calls * 1000)
        return statistics.median(runs)
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    direct_port, routed_port = _port(), _port()
    direct = per_call_ms([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(direct_port)],
                         direct_port, args.calls, args.repeat)
    routed = per_call_ms([sys.executable, "-P", str(ROUTER), "--owner=bench", f"--state-dir={tempfile.mkdtemp()}",
                          "--", "-H", "127.0.0.1", "-p", str(routed_port)], routed_port, args.calls, args.repeat)
    print(f"{'server':<28}{'GetQueueUrl per call (median of runs)':>40}")
    print(f"{'moto (baseline)':<28}{direct:>37.2f} ms")
    print(f"{'moto behind moto_router':<28}{routed:>37.2f} ms   ({routed / direct:.2f}x)")


if __name__ == "__main__":
    main()

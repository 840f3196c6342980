"""Benchmark: GetMetricData calls for 6 functions x 12 metric-stat pairs x 14 days at 1-minute period.

Runs against moto's server on loopback, seeded with PutMetricData, and counts the calls with a
botocore event hook (``before-call.cloudwatch.GetMetricData``). Prints the count beside the
theoretical minimum, max(ceil(datapoints / 100,800), ceil(queries / 500)), and beside the naive
"one call per query" approach.

The 12 pairs avoid percentiles: the local endpoint answers HTTP 500 to those, and
``workbook.metrics`` takes them from the REPORT logs there instead (no GetMetricData call).

    .venv/bin/python bench/metrics_calls.py
"""
from __future__ import annotations

import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAIRS = (
    ("Invocations", "Sum"), ("Errors", "Sum"), ("Throttles", "Sum"),
    ("Duration", "Average"), ("Duration", "Minimum"), ("Duration", "Maximum"), ("Duration", "SampleCount"),
    ("ConcurrentExecutions", "Maximum"), ("ConcurrentExecutions", "Average"),
    ("ProvisionedConcurrencySpilloverInvocations", "Sum"), ("AsyncEventAge", "Maximum"),
)  # 11 AWS/Lambda pairs + the Powertools ColdStart Sum = 12


def main() -> int:
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        from infra import config, specs
        from workbook import aws
        from workbook.telemetry import metrics

        aws.reset_clients()
        settings = config.load("local")
        cw = aws.client("cloudwatch")
        end = int(time.time()) // 60 * 60
        start = end - 14 * 86_400
        queries = []
        for key in specs.FUNCTION_KEYS:
            name = settings.function_name(key)
            queries += metrics.function_queries(name, key, stats=PAIRS)
            # seed a little data for each function
            cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
                {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": name}],
                 "Timestamp": datetime.fromtimestamp(end - 60 * i, tz=UTC), "Value": float(i)} for i in range(1, 11)])
        assert len(queries) == 72, len(queries)
        calls = []
        cw.meta.events.register("before-call.cloudwatch.GetMetricData", lambda **kw: calls.append(1))
        t0 = time.perf_counter()
        frame = metrics.load_metrics(queries, start, end, 60, client=cw)
        elapsed = time.perf_counter() - t0
        points = 72 * (14 * 86_400 // 60)
        minimum = metrics.minimum_calls(len(queries), end - start, 60)
        print("GetMetricData calls for 6 functions x 12 metric-stat pairs x 14 days at 1-minute period")
        print(f"  datapoints requested      {points:,} ({points / 72:,.0f} per query)")
        print(f"  theoretical minimum       {minimum} calls (max(ceil({points:,} / 100,800), ceil(72 / 500)))")
        print(f"  workbook.metrics made     {len(calls)} calls (counted by event hook; {len(frame)} rows back, {elapsed:.1f} s)")
        print("  naive: one call per query 72 calls")
        print(f"  result: {'equal to the minimum' if len(calls) == minimum else 'ABOVE the minimum'}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

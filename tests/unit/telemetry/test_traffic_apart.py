"""Power tuning's invocations kept apart from the traffic: the version column, the loaders, the metrics.

Oracles: AWS's documented log stream names (``YYYY/MM/DD/[$LATEST]<id>``, ``[N]`` for a published
version) and metric dimensions (``FunctionName`` for every version together; ``FunctionName`` +
``Resource`` = ``name:qualifier`` for a qualified invocation), served back by moto's server.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd

from infra import config
from tests.unit.telemetry.test_logs import text_report
from workbook.analysis import health
from workbook.telemetry import logs, metrics
from workbook.telemetry.reports import COLUMNS, parse_reports

LATEST = "2026/12/01/[$LATEST]0a1b2c3d4e5f60718293a4b5c6d7e8f9"
VERSION_7 = "2026/12/01/[7]0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def test_version_column_reads_the_log_stream_name():
    # GIVEN FilterLogEvents events from $LATEST, from version 7, and a Logs Insights row from version 12
    events = [
        {"message": text_report("a"), "timestamp": 1_700_000_000_000, "logStreamName": LATEST, "logGroupName": "/aws/lambda/f"},  # fixed epoch: parsed in memory only
        {"message": "START RequestId: b Version: 7", "timestamp": 1_700_000_000_000, "logStreamName": VERSION_7},  # fixed epoch: parsed in memory only
        {"message": text_report("b"), "timestamp": 1_700_000_000_001, "logStreamName": VERSION_7, "logGroupName": "/aws/lambda/f"},  # fixed epoch: parsed in memory only
        {"@message": text_report("c"), "@timestamp": "2026-12-01 10:00:00.000", "@log": "123456789012:/aws/lambda/f",
         "@logStream": "2026/12/01/[12]ffee"},
    ]
    # WHEN parsed
    df = parse_reports(events)
    # THEN each row has its version, after start_type, and the ten contract columns are unchanged
    assert df["version"].tolist() == ["$LATEST", "7", "12"]
    assert list(df.columns) == list(COLUMNS)
    assert list(COLUMNS).index("version") == list(COLUMNS).index("start_type") + 1


def test_plain_lines_have_no_version():
    df = parse_reports([text_report("a")])
    assert df["version"].isna().all() and str(df["version"].dtype) == "string"
    assert "version" in parse_reports([]).columns


def test_split_traffic_keeps_latest_live_and_unknown_versions_as_traffic():
    # GIVEN rows on $LATEST, on the live alias's version 3, on tuning's 8 and 9, and one without a stream
    frame = pd.DataFrame({"function": ["f", "f", "f", "f", "g"],
                          "version": pd.array(["$LATEST", "3", "8", "9", None], dtype="string")})
    # WHEN split with f's live alias at version 3
    traffic, tuning = logs.split_traffic(frame, {"f": ["3"]})
    # THEN tuning is versions 8 and 9 only
    assert traffic["version"].fillna("?").tolist() == ["$LATEST", "3", "?"]
    assert tuning["version"].tolist() == ["8", "9"]


def _put_reports(client, group, stream, lines, start_ms):
    try:
        client.create_log_group(logGroupName=group)
    except client.exceptions.ResourceAlreadyExistsException:
        pass
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    client.put_log_events(logGroupName=group, logStreamName=stream,
                          logEvents=[{"timestamp": start_ms + i, "message": m} for i, m in enumerate(lines)])


def test_load_for_env_counts_traffic_only_by_default(local_endpoint):
    from workbook import aws

    # GIVEN 13 traffic invocations on $LATEST and 183 power-tuning invocations on versions 1..6 (the case)
    settings = config.load("local")
    client = aws.client("logs")
    name = settings.function_name("file-processor")
    start_ms = int(time.time() * 1000) - 300_000
    _put_reports(client, f"/aws/lambda/{name}", LATEST, [text_report(f"t{i}", memory=2048) for i in range(13)], start_ms)
    for version in range(1, 7):
        _put_reports(client, f"/aws/lambda/{name}", f"2026/12/01/[{version}]abc{version}",
                     [text_report(f"v{version}-{i}", memory=3008) for i in range(30 if version < 6 else 33)],
                     start_ms + 1000)
    end_ms = start_ms + 120_000
    # WHEN loaded as the notebooks load it
    traffic = logs.load_for_env(settings, start_ms, end_ms, keys=["file-processor"])
    tuning = logs.load_for_env(settings, start_ms, end_ms, keys=["file-processor"], invocations="tuning")
    everything = logs.load_for_env(settings, start_ms, end_ms, keys=["file-processor"], invocations="all")
    # THEN the traffic is the 13, tuning's 183 are counted apart and still available
    assert len(traffic) == 13 and set(traffic["memory_size_mb"]) == {2048}
    assert traffic.attrs["tuning_rows"] == 183 and len(tuning) == 183 and len(everything) == 196
    assert set(tuning["version"]) == {"1", "2", "3", "4", "5", "6"}


def _metric(cw, dims, values, start):
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": datetime.fromtimestamp(start + i * 60, tz=UTC),
         "Value": float(v)} for i, v in enumerate(values)])


def test_tuning_counts_come_from_the_resource_dimension_and_leave_health_with_the_traffic(local_endpoint):
    from workbook import aws

    # GIVEN Lambda's metrics for 196 invocations of which 183 ran on tuning's RAM aliases, and 5 on the live alias
    settings = config.load("local")
    name = settings.function_name("file-processor")
    cw = aws.client("cloudwatch")
    start = (int(time.time()) // 60) * 60 - 1800
    _metric(cw, [{"Name": "FunctionName", "Value": name}], [100, 96], start)
    _metric(cw, [{"Name": "FunctionName", "Value": name}, {"Name": "Resource", "Value": f"{name}:RAM128"}], [90], start)
    _metric(cw, [{"Name": "FunctionName", "Value": name}, {"Name": "Resource", "Value": f"{name}:RAM1024"}], [93], start)
    _metric(cw, [{"Name": "FunctionName", "Value": name}, {"Name": "Resource", "Value": f"{name}:RAM1024"},
                 {"Name": "ExecutedVersion", "Value": "4"}], [93], start)
    _metric(cw, [{"Name": "FunctionName", "Value": name}, {"Name": "Resource", "Value": f"{name}:live"}], [5], start)
    # WHEN the tuning's counts are read and health is computed with them
    tuning = metrics.tuning_counts(settings, ["file-processor"], start, start + 1800, client=cw)
    window = pd.DataFrame({"function": ["file-processor"], "metric": ["Invocations"], "stat": ["Sum"],
                           "timestamp": [pd.Timestamp(start, unit="s", tz="UTC")], "value": [196.0],
                           "source": ["cloudwatch"]})
    table = health.per_function(window, settings, ["file-processor"], tuning)
    # THEN only the RAM aliases count as tuning (not live, not the ExecutedVersion duplicate), and health has the 13
    assert tuning[tuning["metric"] == "Invocations"]["value"].sum() == 183
    assert table.loc[0, "invocations"] == 13

"""workbook.cost: the price table, the model against AWS's published examples, Cost Explorer."""
from __future__ import annotations

import json
from datetime import date

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from workbook.analysis import cost


# ---------------------------------------------------------------------------------------------
# AWS's published examples (https://aws.amazon.com/lambda/pricing/, US East (N. Virginia)).
# The page rounds each charge to the cent; older examples used $0.00001667 per GB-s.
# ---------------------------------------------------------------------------------------------
def test_pricing_page_example_512mb_3m_requests_1s_with_free_tier():
    # 3M x 1 s x 0.5 GB = 1,500,000 GB-s; minus 400,000 free = 1,100,000 GB-s -> $18.34; 2M requests -> $0.40
    c = cost.monthly_cost(3_000_000, 1000, 512)
    assert c.gb_seconds == 1_500_000
    assert c.compute_usd == pytest.approx(18.34, abs=0.01)
    assert c.requests_usd == pytest.approx(0.40)
    assert c.total_usd == pytest.approx(18.74, abs=0.01)


def test_pricing_page_example_128mb_30m_requests_200ms_with_free_tier():
    # 30M x 0.2 s x 0.125 GB = 750,000 GB-s; 350,000 billable -> $5.83; 29M requests -> $5.80; total $11.63
    c = cost.monthly_cost(30_000_000, 200, 128)
    assert c.compute_usd == pytest.approx(5.83, abs=0.01)
    assert c.requests_usd == pytest.approx(5.80)
    assert c["total_usd"] == pytest.approx(11.63, abs=0.01)


def test_pricing_page_example_arm_1536mb_3m_requests_120ms():
    # 3M x 0.12 s x 1.5 GB = 540,000 GB-s x $0.0000133334 = $7.20; 3M requests = $0.60; total $7.80
    c = cost.monthly_cost(3_000_000, 120, 1536, arch="arm64", free_tier=False)
    assert c.gb_seconds == pytest.approx(540_000)
    assert c.compute_usd == pytest.approx(7.20, abs=0.005)
    assert c.requests_usd == pytest.approx(0.60)
    assert c.total_usd == pytest.approx(7.80, abs=0.005)


def test_pricing_page_provisioned_concurrency_example():
    # 1,000 environments x 1 GB for 2 hours = 7.2M GB-s x $0.0000041667 = $30.00;
    # 1.2M invocations x 1 s x 1 GB = 1.2M GB-s x $0.0000097222 = $11.67; requests $0.24; total $41.91
    c = cost.monthly_cost(1_200_000, 1000, 1024, free_tier=False, provisioned_concurrency=1000, provisioned_hours=2)
    assert c.provisioned_usd == pytest.approx(30.00 + 11.67, abs=0.01)
    assert c.compute_usd == 0
    assert c.requests_usd == pytest.approx(0.24)
    assert c.total_usd == pytest.approx(41.91, abs=0.01)


def test_tiers_apply_to_aggregate_gb_seconds():
    # 10B GB-s of x86: 6B at $0.0000166667 and 4B at $0.000015
    gb_s = 10e9
    memory_mb = 1024
    invocations = gb_s  # 1 s at 1 GB each
    c = cost.monthly_cost(invocations, 1000, memory_mb, free_tier=False)
    assert c.compute_usd == pytest.approx(6e9 * 0.0000166667 + 4e9 * 0.000015)
    # starting further up the tiers (the rest of the account used 15B already): the lowest tier
    assert cost.duration_charge(1e6, "x86_64", already_used_gb_s=15e9) == pytest.approx(1e6 * 0.0000133334)


def test_duration_is_billed_by_the_millisecond():
    a = cost.monthly_cost(1_000_000, 100.2, 1024, free_tier=False)
    b = cost.monthly_cost(1_000_000, 101, 1024, free_tier=False)
    assert a.compute_usd == b.compute_usd and a.billed_duration_ms == 101


def test_ephemeral_storage_above_512mb():
    c = cost.monthly_cost(1_000_000, 1000, 1024, free_tier=False, ephemeral_storage_mb=10240)
    assert c.ephemeral_usd == pytest.approx(1_000_000 * (10240 - 512) / 1024 * 0.0000000309)
    assert cost.monthly_cost(1_000_000, 1000, 1024, ephemeral_storage_mb=512).ephemeral_usd == 0


def test_init_is_billed_for_zip_functions_from_august_2025():
    kwargs = dict(cold_starts=10_000, avg_init_duration_ms=500, free_tier=False)
    before = cost.monthly_cost(1_000_000, 50, 512, billing_date=date(2025, 7, 31), **kwargs)
    after = cost.monthly_cost(1_000_000, 50, 512, billing_date=date(2025, 8, 1), **kwargs)
    image = cost.monthly_cost(1_000_000, 50, 512, billing_date=date(2025, 7, 31), package_type="Image", **kwargs)
    assert before.init_usd == 0 and "INIT not billed" in before.notes[0]
    assert after.init_usd == pytest.approx(10_000 * 0.5 * 0.5 * 0.0000166667)
    assert image.init_usd == after.init_usd


def test_region_missing_from_the_table_is_a_clear_error():
    with pytest.raises(cost.PriceTableError, match="'sa-east-1' is not in the price table"):
        cost.monthly_cost(1, 1, 128, region="sa-east-1")
    # a region present but without the price a charge needs: named too, never guessed
    with pytest.raises(cost.PriceTableError, match="provisioned concurrency price for region 'eu-west-1'"):
        cost.monthly_cost(1, 1, 128, region="eu-west-1", provisioned_concurrency=1)
    with pytest.raises(cost.CostError, match="architecture"):
        cost.monthly_cost(1, 1, 128, arch="sparc")


def test_the_table_is_dated_and_cites_its_source():
    table = cost.load_prices()
    assert table["source"].startswith("https://aws.amazon.com/lambda/pricing")
    date.fromisoformat(table["compiled"])
    assert {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"} <= set(table["regions"])


# ---------------------------------------------------------------------------------------------
# Per-function cost from REPORT rows.
# ---------------------------------------------------------------------------------------------
def _reports():
    t0 = pd.Timestamp("2025-11-01T00:00:00Z")
    return pd.DataFrame({
        "function": ["a", "a", "b"],
        "timestamp": [t0, t0 + pd.Timedelta(hours=1), t0 + pd.Timedelta(hours=2)],
        "duration_ms": [99.5, 10.0, 1000.0],
        "billed_duration_ms": [100, 10, 1000],
        "memory_size_mb": [1024, 1024, 512],
        "init_duration_ms": [200.0, float("nan"), float("nan")],
        "cold_start": [True, False, False],
    })


def test_cost_from_reports_per_function_and_projection():
    frame = cost.cost_from_reports(_reports())
    a = frame.set_index("function").loc["a"]
    assert a["gb_seconds"] == pytest.approx(0.11)
    assert a["init_gb_seconds"] == pytest.approx(0.2)
    assert a["requests_usd"] == pytest.approx(2 * 0.2e-6)
    assert a["monthly_projection_usd"] == pytest.approx(a["total_usd"] * 730 / 2)


def test_cost_from_reports_without_data():
    assert cost.cost_from_reports(pd.DataFrame()).empty


# ---------------------------------------------------------------------------------------------
# Cost Explorer and the Price List API.
# ---------------------------------------------------------------------------------------------
def _settings():
    from infra import config

    return config.load("prod")


def test_actual_cost_on_the_local_endpoint_is_model_only(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    frame = cost.actual_cost(_settings(), "2025-11-01", "2025-11-03")
    assert frame.empty and frame.attrs["source"] == "model only"


def test_actual_cost_filters_by_service_and_tags():
    client = boto3.client("ce", region_name="us-east-1")
    expected = {
        "TimePeriod": {"Start": "2025-11-01", "End": "2025-11-03"}, "Granularity": "DAILY", "Metrics": ["UnblendedCost"],
        "Filter": {"And": [
            {"Dimensions": {"Key": "SERVICE", "Values": ["AWS Lambda"]}},
            {"Tags": {"Key": "Project", "Values": ["lwb"]}},
            {"Tags": {"Key": "Environment", "Values": ["prod"]}},
        ]},
    }
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": [
            {"TimePeriod": {"Start": "2025-11-01", "End": "2025-11-02"}, "Total": {"UnblendedCost": {"Amount": "1.5", "Unit": "USD"}}},
            {"TimePeriod": {"Start": "2025-11-02", "End": "2025-11-03"}, "Total": {"UnblendedCost": {"Amount": "2.0", "Unit": "USD"}}},
        ]}, expected)
        frame = cost.actual_cost(_settings(), "2025-11-01", "2025-11-03", client=client)
    assert frame["cost_usd"].sum() == pytest.approx(3.5)


@pytest.mark.parametrize("code, message", [("AccessDeniedException", "denied"), ("LimitExceededException", "throttled"),
                                           ("DataUnavailableException", "no data yet")])
def test_actual_cost_errors_are_clear(code, message):
    client = boto3.client("ce", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", service_error_code=code, http_status_code=400)
        with pytest.raises(cost.CostError, match=message):
            cost.actual_cost(_settings(), "2025-11-01", "2025-11-03", client=client)


def test_actual_cost_empty_range():
    with pytest.raises(cost.CostError, match="empty"):
        cost.actual_cost(_settings(), "2025-11-03", "2025-11-03", client=object())


def test_refresh_prices_needs_aws(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    with pytest.raises(cost.CostError, match="Price List API"):
        cost.refresh_prices(["us-east-1"])


def _product(usage, price, begin="0", end="Inf"):
    return json.dumps({"product": {"attributes": {"usagetype": usage}},
                       "terms": {"OnDemand": {"t": {"priceDimensions": {"d": {
                           "pricePerUnit": {"USD": str(price)}, "beginRange": begin, "endRange": end}}}}}})


def test_refresh_prices_from_a_price_list_answer(tmp_path):
    target = tmp_path / "prices.json"
    target.write_text(cost.PRICES_PATH.read_text())
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": [
            _product("SAE1-Lambda-GB-Second", "0.0000221", "0", "6000000000"),
            _product("SAE1-Lambda-GB-Second", "0.0000199", "6000000000", "Inf"),
            _product("SAE1-Lambda-GB-Second-ARM", "0.0000177"),
            _product("SAE1-Request", "0.0000002"),
        ], "FormatVersion": "aws_v1"})
        table = cost.refresh_prices(["sa-east-1"], path=target, client=client)
    assert table["regions"]["sa-east-1"]["duration_gb_s"]["x86_64"][0] == {"up_to_gb_s": 6e9, "price": 0.0000221}
    assert table["regions"]["sa-east-1"]["requests_per_million"] == pytest.approx(0.2)
    assert cost.region_prices("sa-east-1", target)["duration_gb_s"]["arm64"][0]["price"] == 0.0000177


def test_refresh_prices_denied_is_clear(tmp_path):
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_products", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(cost.CostError, match="Price List API denied.*pricing:GetProducts"):
            cost.refresh_prices(["us-east-1"], path=tmp_path / "p.json", client=client, write=False)


def test_model_beside_actual_on_the_local_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    frame = cost.model_beside_actual(_settings(), _reports(), "2025-11-01", "2025-11-02")
    assert len(frame) == 1 and frame["modelled_usd"].iloc[0] > 0 and frame["actual_usd"].isna().all()
    assert "model" in frame.attrs["note"]


def test_model_beside_actual_with_cost_explorer(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("ce", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": [
            {"TimePeriod": {"Start": "2025-11-01", "End": "2025-11-02"}, "Total": {"UnblendedCost": {"Amount": "0.25", "Unit": "USD"}}}]})
        frame = cost.model_beside_actual(_settings(), _reports(), "2025-11-01", "2025-11-02", client=client)
    assert frame["actual_usd"].tolist() == [0.25]


# ---------------------------------------------------------------------------------------------
# SnapStart: the pricing page's worked example, and restores read from REPORT lines.
# ---------------------------------------------------------------------------------------------
def test_pricing_page_snapstart_example():
    # GIVEN the page's example (us-east-1, x86): 10,000 vehicles x 24 x 31 = 7.44M requests of 2 s at 1 GB,
    # one version cached all month (744 h), 1% of requests restored from the snapshot
    # WHEN the month is modelled
    c = cost.monthly_cost(7_440_000, 2000, 1024, free_tier=False, restores=74_400, snapstart_cached_hours=24 * 31)
    # THEN each charge is the page's: requests $1.49, compute $248.00, cache $4.03 + restore $10.40 = $14.43,
    # total $263.92
    assert c.requests_usd == pytest.approx(1.49, abs=0.005)
    assert c.compute_usd == pytest.approx(248.00, abs=0.005)
    assert c.snapstart_usd == pytest.approx(14.43, abs=0.005)
    assert cost.snapstart_charge(74_400, 1024, "us-east-1") == pytest.approx(10.40, abs=0.005)
    assert c.total_usd == pytest.approx(263.92, abs=0.01)


def test_snapstart_prices_cite_their_source_and_java_pays_none():
    # GIVEN the table WHEN SnapStart is priced THEN the price and its source are in it, and Java runtimes pay nothing
    table = cost.load_prices()
    assert table["snapstart_source"].startswith("https://aws.amazon.com/lambda/pricing")
    assert table["regions"]["us-east-1"]["snapstart"]["restore_gb"] == 0.0001397998
    assert cost.snapstart_charge(1_000, 2048, "us-east-1", runtime="java21") == 0
    assert cost.monthly_cost(1_000, 10, 2048, restores=1_000, runtime="java21").snapstart_usd == 0
    # a region without a SnapStart price is named, never guessed
    with pytest.raises(cost.PriceTableError, match="SnapStart price for region 'eu-west-1'"):
        cost.monthly_cost(1_000, 10, 2048, region="eu-west-1", restores=10)


SNAPSTART_LINES = [
    # billed duration already holds the billed restore duration (1206.41 + 182 -> 1389), as Lambda reports it
    "2025-11-05T08:09:10.000Z REPORT RequestId: r1\tDuration: 1206.41 ms\tBilled Duration: 1389 ms\tMemory Size: 3008 MB\t"
    "Max Memory Used: 173 MB\tRestore Duration: 402.97 ms\tBilled Restore Duration: 182 ms\t",
    "2025-11-05T09:09:10.000Z REPORT RequestId: r2\tDuration: 9.50 ms\tBilled Duration: 10 ms\tMemory Size: 3008 MB\t"
    "Max Memory Used: 173 MB\t",
    "2025-11-05T10:09:10.000Z REPORT RequestId: r3\tDuration: 300.00 ms\tBilled Duration: 400 ms\tMemory Size: 1024 MB\t"
    "Max Memory Used: 99 MB\tInit Duration: 250.00 ms\t",
]


def test_cost_from_reports_charges_restores_once():
    from workbook.logs import parse_reports

    # GIVEN REPORT lines of one SnapStart restore, one warm invocation and one cold start with INIT already billed
    reports = parse_reports(SNAPSTART_LINES, function="fn")
    # WHEN the cost is computed from them
    row = cost.cost_from_reports(reports).set_index("function").loc["fn"]
    # THEN the restore pays per GB restored, and its billed restore time is not charged a second time
    assert row["restores"] == 1 and row["cold_starts"] == 2
    assert row["snapstart_usd"] == pytest.approx(3008 / 1024 * 0.0001397998)
    assert row["gb_seconds"] == pytest.approx((1389 * 3008 + 10 * 3008 + 400 * 1024) / 1000 / 1024)
    # and INIT (billed for zip functions since August 2025) is added where Billed Duration lacks it: 250 ms at 1 GB
    assert row["init_gb_seconds"] == pytest.approx(0.25)
    assert row["total_usd"] == pytest.approx(row["requests_usd"] + row["compute_usd"] + row["init_usd"] + row["snapstart_usd"])


def test_cost_from_reports_adds_a_billed_restore_missing_from_billed_duration():
    from workbook.logs import parse_reports

    # GIVEN a restore whose Billed Duration (10 ms) lacks its Billed Restore Duration (100 ms), at 2 GB
    line = ("REPORT RequestId: r9 Duration: 9.50 ms Billed Duration: 10 ms Memory Size: 2048 MB Max Memory Used: 90 MB "
            "Restore Duration: 300.00 ms Billed Restore Duration: 100 ms")
    row = cost.cost_from_reports(parse_reports([line], function="fn"), period=("2025-11-01", "2025-11-02")).iloc[0]
    # THEN the 100 ms are charged as duration, under SnapStart, beside the per-GB restore
    expected = 0.1 * 2 * 0.0000166667 + 2 * 0.0001397998
    assert row["snapstart_usd"] == pytest.approx(expected)


def test_managed_instances_rows_pay_requests_and_say_why_not_compute():
    from workbook.logs import parse_reports

    # GIVEN two Lambda Managed Instances records (duration only) and one on-demand REPORT
    managed = ('{"time":"2025-11-05T10:00:00.000Z","type":"platform.report","record":{"requestId":"m%d",'
               '"metrics":{"durationMs":4.2},"status":"success"}}')
    reports = parse_reports([managed % 1, managed % 2, SNAPSTART_LINES[1]], function="fn")
    # WHEN costed
    frame = cost.cost_from_reports(reports)
    row = frame.iloc[0]
    # THEN all three requests are charged, compute only for the on-demand one, and the note says why
    assert row["invocations"] == 3 and row["requests_usd"] == pytest.approx(3 * 0.2e-6)
    assert row["gb_seconds"] == pytest.approx(0.01 * 3008 / 1024)
    assert "2 invocations report no billed duration or memory (Lambda Managed Instances)" in frame.attrs["note"]

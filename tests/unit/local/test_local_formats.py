"""The platform lines the sandbox writes, in Lambda's text and JSON formats."""
from __future__ import annotations

import json

import pytest

from workbook.local import commands
from workbook.local.sandbox import formats, vcpus_for
from workbook.local.sandbox.formats import LogFormat, Report, Status
from workbook.logs import parse_reports


def test_text_report_is_tab_separated_with_init_duration_on_cold_starts_only():
    # DESIGN.md's example line predates INIT billing (1 August 2025), so it is rebuilt without it
    cold = Report("3604209a-e9a3-11e6-939a-754dd98c7be3", 12.34, 128, 18, init_duration_ms=125.67, init_billed=False)
    assert cold.text() == ("REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\t"
                           "Billed Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\t"
                           "Init Duration: 125.67 ms\t")
    warm = Report("r", 0.2, 128, 18)
    assert "Init Duration" not in warm.text() and warm.billed_duration_ms == 1


def test_a_cold_start_bills_its_init_phase():
    cold = Report("r", 12.34, 128, 18, init_duration_ms=125.67)
    assert cold.billed_duration_ms == 139          # ceil(12.34 + 125.67)
    assert "\tBilled Duration: 139 ms\t" in cold.text()
    assert Report("r", 12.34, 128, 18).billed_duration_ms == 13


def test_timeouts_and_platform_errors_carry_a_status_but_handler_exceptions_do_not():
    assert Report("r", 3000.5, 128, 20, status=Status.TIMEOUT).text().endswith("\tStatus: timeout\t")
    oom = Report("r", 10, 128, 128, status=Status.ERROR, error_type="Runtime.OutOfMemory").text()
    assert oom.endswith("\tStatus: error\tError Type: Runtime.OutOfMemory\t")
    handled = Report("r", 10, 128, 20, status=Status.ERROR, error_type="ValueError").text()
    assert "Status" not in handled


def test_json_record_has_the_platform_report_fields():
    line = formats.report(LogFormat.JSON, Report("r1", 1.5, 256, 40, init_duration_ms=80.0))
    record = json.loads(line)
    assert record["type"] == "platform.report"
    assert record["record"]["metrics"] == {"durationMs": 1.5, "billedDurationMs": 82, "memorySizeMB": 256,
                                           "maxMemoryUsedMB": 40, "initDurationMs": 80.0}
    assert record["record"]["status"] == "success"


def test_the_loaders_read_what_the_sandbox_writes():
    lines = [Report("a", 5.0, 512, 60, init_duration_ms=200.0).text(),
             Report("b", 3000.0, 512, 60, status=Status.TIMEOUT).text(),
             formats.report(LogFormat.JSON, Report("c", 7.0, 512, 60, status=Status.ERROR,
                                                   error_type="Runtime.OutOfMemory"))]
    frame = parse_reports(lines, function="f").set_index("request_id")
    assert bool(frame.loc["a", "cold_start"]) and frame.loc["a", "init_duration_ms"] == 200.0
    assert frame.loc["b", "status"] == "timeout"
    assert frame.loc["c", "status"] == "out_of_memory"


def test_start_end_and_timeout_lines():
    assert formats.start(LogFormat.TEXT, "r") == "START RequestId: r Version: $LATEST"
    assert formats.end(LogFormat.TEXT, "r") == "END RequestId: r"
    assert formats.end(LogFormat.JSON, "r") is None
    assert formats.timed_out(LogFormat.TEXT, "r", 3).endswith(" r Task timed out after 3.00 seconds")
    assert formats.trace_header(False).startswith("Root=1-") and "Sampled=0" in formats.trace_header(False)


def test_cpu_share_follows_memory_up_to_six_vcpus():
    assert vcpus_for(1769) == 1.0
    assert round(vcpus_for(128), 4) == round(128 / 1769, 4)
    assert vcpus_for(10_240) == 6.0 and 1.0 < vcpus_for(3008) < 2.0


@pytest.mark.parametrize(("status", "error_type", "parsed"), [
    (Status.ERROR, "Runtime.OutOfMemory", "out_of_memory"),
    (Status.TIMEOUT, "Sandbox.Timedout", "timeout"),
    (Status.ERROR, "ValueError", "ok"),   # a handler's own exception: Lambda puts no Status in a text REPORT
    (Status.SUCCESS, None, "ok"),
])
def test_invoke_prints_the_report_lambda_writes_even_for_json_log_functions(status, error_type, parsed):
    # GIVEN the figures the engine returns for an invocation of a JSON-log function (no REPORT line in the tail)
    figures = Report(request_id="3604209a-e9a3-11e6-939a-754dd98c7be3", duration_ms=812.5, memory_size_mb=128,
                     max_memory_used_mb=128, init_duration_ms=130.25, status=status, error_type=error_type)
    record = figures.record()
    headers = {"X-Amz-Log-Result": "", "x-amzn-RequestId": figures.request_id,
               "X-Lwb-Report": json.dumps({"cold_start": True, **record["metrics"], "status": record["status"],
                                           "errorType": record.get("errorType")})}
    # WHEN `workbook local invoke` rebuilds the REPORT line for stderr
    line = commands.report_line(headers)
    # THEN it is the text REPORT Lambda writes (Status and Error Type included), field for field
    assert line == figures.text().rstrip("\t")
    # AND the workbook's own REPORT parser reads the same status from it
    row = parse_reports([line]).iloc[0]
    assert row["status"] == parsed and row["max_memory_used_mb"] == 128 and row["billed_duration_ms"] == 943

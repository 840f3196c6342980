"""The documented name of the REPORT-line contract: ``workbook.logs.parse_reports`` (see DESIGN.md).

The implementation lives in ``workbook.telemetry``; this module keeps the public name stable.
"""
from workbook.telemetry.logs import LogsError, load_for_env, load_reports
from workbook.telemetry.reports import COLUMNS, StartType, Status, parse_reports

__all__ = ["COLUMNS", "LogsError", "StartType", "Status", "load_for_env", "load_reports", "parse_reports"]

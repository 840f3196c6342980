"""The workbook library: deploy, telemetry, analysis, tuning and reports for the Lambda compute stack."""
from workbook import _deferred

_deferred.defer()

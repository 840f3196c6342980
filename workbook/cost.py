"""The documented name of the cost contract: ``workbook.cost.monthly_cost`` (see DESIGN.md).

The implementation lives in ``workbook.analysis.cost``; this module keeps the public name stable.
"""
from workbook.analysis.cost import CostBreakdown, CostError, cost_from_reports, invocation_cost, monthly_cost

__all__ = ["CostBreakdown", "CostError", "cost_from_reports", "invocation_cost", "monthly_cost"]

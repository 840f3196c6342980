"""Analysis: what the telemetry means, per function.

    aggregate   the raw route's summary frames from the aggregate route (Logs Insights' aggregates)
    coldstart   cold-start rate, INIT percentiles, INIT's share of latency and cost
    cost        the cost model from one dated price table, and Cost Explorer beside it
    health      health per function, and the alarms in ALARM
"""
from workbook.analysis.cost import CostBreakdown, CostError, cost_from_reports, invocation_cost, monthly_cost

__all__ = ["CostBreakdown", "CostError", "cost_from_reports", "invocation_cost", "monthly_cost"]

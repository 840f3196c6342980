"""Tuning: power tuning as aws-lambda-power-tuning defines it, and the recommendations it leads to.

Modules, from the pure analysis up to the params patch:
    analysis         the tool's analysis: trimmed mean, cost per value, the strategies table (pure)
    model            a fitted duration-versus-memory model and bootstrap confidence (pure)
    runner           the Invoker protocol and the full sweep
    adaptive         the tool's choice with fewer invocations
    aws_invoker      tuning on AWS: temporary versions and aliases, cleaned up
    sandbox_invoker  tuning on the local sandbox
    invokers         which invoker an environment uses
    payloads         representative events per function, in AWS's shapes, and the worst-case probes as events
    probes           the worst-case inputs each function accepts, at its limits (handlers/common/limits.py)
    bounds           distribution-free upper confidence bounds on a quantile, by order statistics (pure)
    floors           the floors and ceilings from the stack: downstream budgets, batches, limits (pure)
    decide           recommend, keep or insufficient-data for a measured memory change (pure)
    rules            memory from usage, architecture, timeout: one rule each
    recommend        the rules applied per function, with a status and confidence; the changes for the patch
    backtest         the timeout rule on the first half of a window, replayed on the second
    patch            recommendations as a reviewed patch to params/<env>.yaml
    defaults         power values and every tuning default, in one place

``workbook.tuning.analyze`` is a public contract (see DESIGN.md).
"""
from workbook.tuning.adaptive import AdaptiveRun, PayloadMix, adaptive_power_tuning
from workbook.tuning.analysis import (
    STRATEGIES,
    AnalysisResult,
    Strategy,
    TuningError,
    TuningInputError,
    analyze,
    base_cost_per_ms,
    compute_price,
    trimmed_mean,
)
from workbook.tuning.aws_invoker import AwsLambdaInvoker
from workbook.tuning.bounds import QuantileBound, min_samples, quantile_upper_bound
from workbook.tuning.decide import MemoryDecision, Status, decide_memory
from workbook.tuning.defaults import DEFAULT_POWER_VALUES
from workbook.tuning.model import DurationModel, bootstrap_confidence, fit_duration_model, recommend_from_model
from workbook.tuning.patch import ParamsPatch, params_patch
from workbook.tuning.rules import recommend_architecture, recommend_memory_from_usage, recommend_timeout
from workbook.tuning.runner import (
    InvocationResult,
    Invoker,
    TuningRun,
    analyze_invocations,
    generate_payloads,
    run_power_tuning,
)

__all__ = [
    "DEFAULT_POWER_VALUES", "STRATEGIES", "AdaptiveRun", "AnalysisResult", "AwsLambdaInvoker", "DurationModel",
    "InvocationResult", "Invoker", "MemoryDecision", "ParamsPatch", "PayloadMix", "QuantileBound", "Status", "Strategy",
    "TuningError", "TuningInputError", "TuningRun", "adaptive_power_tuning", "analyze", "analyze_invocations",
    "base_cost_per_ms", "bootstrap_confidence", "compute_price", "decide_memory", "fit_duration_model",
    "generate_payloads", "min_samples", "params_patch", "quantile_upper_bound", "recommend_architecture",
    "recommend_from_model", "recommend_memory_from_usage", "recommend_timeout", "run_power_tuning", "trimmed_mean",
]

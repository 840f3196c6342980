"""Tuning: power tuning as aws-lambda-power-tuning defines it, and the recommendations it leads to.

Modules, from the pure analysis up to the params patch:
    analysis         the tool's analysis: trimmed mean, cost per value, the strategies table (pure)
    model            a fitted duration-versus-memory model and bootstrap confidence (pure)
    runner           the Invoker protocol and the full sweep
    adaptive         the tool's choice with fewer invocations
    aws_invoker      tuning on AWS: temporary versions and aliases, cleaned up
    sandbox_invoker  tuning on the local sandbox
    invokers         which invoker an environment uses
    payloads         representative events per function, in AWS's shapes
    rules            memory from usage, architecture, timeout: one rule each
    recommend        the rules applied per function, priced; the changes for the patch
    patch            recommendations as a reviewed patch to params/<env>.yaml
    defaults         power values and every tuning default, in one place

``workbook.tuning.analyze`` is a public contract (see DESIGN.md).
"""
from workbook.tuning.adaptive import AdaptiveRun, adaptive_power_tuning
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
    "InvocationResult", "Invoker", "ParamsPatch", "Strategy", "TuningError", "TuningInputError", "TuningRun",
    "adaptive_power_tuning", "analyze", "analyze_invocations", "base_cost_per_ms", "bootstrap_confidence",
    "compute_price", "fit_duration_model", "generate_payloads", "params_patch", "recommend_architecture",
    "recommend_from_model", "recommend_memory_from_usage", "recommend_timeout", "run_power_tuning", "trimmed_mean",
]

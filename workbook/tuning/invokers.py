"""Which invoker power tuning drives for an environment: the local sandbox for ``local``, AWS otherwise.

An explicit table, not a search: a new kind of target adds a row here.
"""
from __future__ import annotations

from collections.abc import Callable

from infra.config import Settings
from workbook.tuning import sandbox_invoker
from workbook.tuning.aws_invoker import AwsLambdaInvoker
from workbook.tuning.runner import Invoker

__all__ = ["INVOKERS", "make_invoker"]


def _aws(settings: Settings, key: str) -> Invoker:
    return AwsLambdaInvoker(settings.function_name(key), region=settings.params.aws_region)


#: Invoker factories by kind of environment: ``factory(settings, function_key)``.
INVOKERS: dict[str, Callable[[Settings, str], Invoker]] = {
    "aws": _aws,
    "local": sandbox_invoker.for_function,
}


def make_invoker(settings: Settings, key: str) -> Invoker:
    """The invoker for function ``key`` of ``settings``' environment."""
    return INVOKERS["local" if settings.env == "local" else "aws"](settings, key)

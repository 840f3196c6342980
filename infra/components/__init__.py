"""Pulumi ComponentResources of the compute stack."""
from infra.components.function import LambdaFunction
from infra.components.queue import DeadLetterQueue, QueueWithDlq

__all__ = ["DeadLetterQueue", "LambdaFunction", "QueueWithDlq"]

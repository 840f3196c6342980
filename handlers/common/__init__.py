"""The shared layer of the compute stack's handlers (ships as a Lambda layer at /opt/python/common).

Import the submodule you need (``from common import config, errors``). This package imports
nothing on its own, so that a handler pays only for what it uses: the auth handler never loads
boto3, the others load it once.

Submodules, one per concern:
    config        the function's environment, read and validated once at INIT
    budgets       every downstream timeout, attempt count and backoff (the workbook's timeout floors read it)
    errors        the one error hierarchy and its mapping to HTTP responses
    logger        Powertools Logger (JSON, request id, correlation id)
    metrics       Powertools Metrics (EMF, cold start, business metrics)
    tracer        Powertools Tracer, loaded only when tracing is active
    secrets       Secrets Manager reads with a TTL cache (boto3 or the Lambda extension)
    aws           boto3 clients, created once per execution environment
    db            the PostgreSQL connection (pg8000) and the schema migrations
    events        checks of incoming event shapes and JSON message bodies
    httpclient    outbound HTTP with timeouts, backoff with full jitter and a circuit breaker
    runtime       the remaining-time guard shared by every handler
    tokens        JWT verification for the auth handler (stdlib; cryptography only for RS256)
"""
__all__ = [
    "aws", "budgets", "config", "db", "errors", "events", "httpclient", "logger", "metrics", "runtime", "secrets", "tokens",
    "tracer",
]

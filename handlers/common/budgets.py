"""The downstream time budgets: the one home of every timeout, attempt count and backoff the handlers use.

The handlers build their clients from these names (``common.aws``, ``common.db``,
``notification_handler``'s webhook client, ``auth_handler``'s secrets extension), and the
workbook derives its timeout floors from the same file (``workbook.tuning.floors`` loads it by
path: the layer cannot import the workbook, and the workbook does not put handlers/ on its path),
so a recommendation can never cut a retry the code makes. Change a budget here and both follow.

Seconds unless the name says otherwise; attempts count the first one.
"""
from __future__ import annotations

# AWS SDK (boto3 clients, common/aws.py): botocore's ``retries.max_attempts`` counts the retries after
# the first attempt (botocore turns 3 into total_max_attempts 4); standard mode adds its own backoff.
SDK_CONNECT_TIMEOUT_S = 3.0
SDK_READ_TIMEOUT_S = 10.0
SDK_MAX_RETRIES = 3

# PostgreSQL (pg8000, common/db.py): the socket timeout bounds the connect and every read, so it is
# also each statement's limit; Database.run retries a statement once on a fresh connection.
DB_TIMEOUT_S = 5.0
DB_STATEMENT_ATTEMPTS = 2

# The external webhook (common/httpclient.py HttpClient in notification_handler.py): per-attempt
# timeout, attempts, and full-jitter backoff uniform(0, min(cap, base * 2**retry)).
HTTP_TIMEOUT_S = 3.0
HTTP_MAX_ATTEMPTS = 3
HTTP_BACKOFF_BASE_S = 0.2
HTTP_BACKOFF_CAP_S = 2.0

# The scheduler's SendMessageBatch (scheduler.py send_batch): failed entries are sent again, up to this
# many calls in all, with backoff uniform(0, min(cap, base * 2**retry)) between them.
SQS_SEND_ATTEMPTS = 3
SQS_SEND_BACKOFF_BASE_S = 0.05
SQS_SEND_BACKOFF_CAP_S = 1.0

# The Parameters and Secrets Lambda Extension (common/secrets.py ExtensionSource in auth_handler.py): one attempt.
SECRETS_EXTENSION_TIMEOUT_S = 2.0

#: The dependencies each function calls on its own code paths.
DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "api-processor": ("aws-sdk", "database"),              # GetSecretValue, then PostgreSQL
    "data-processor": ("aws-sdk", "database"),             # the secret, an upsert per record, one SNS publish
    "file-processor": ("aws-sdk",),                        # S3 get and puts, EventBridge
    "scheduler": ("aws-sdk", "database", "sqs-send-batch"),  # PostgreSQL, SQS batches resent, SNS
    "notification-handler": ("aws-sdk", "webhook"),        # the secret, then the webhook per record
    "auth-handler": ("secrets-extension",),                # the signing key through the extension
}

__all__ = ["DB_STATEMENT_ATTEMPTS", "DB_TIMEOUT_S", "DEPENDENCIES", "HTTP_BACKOFF_BASE_S", "HTTP_BACKOFF_CAP_S",
           "HTTP_MAX_ATTEMPTS", "HTTP_TIMEOUT_S", "SDK_CONNECT_TIMEOUT_S", "SDK_MAX_RETRIES", "SDK_READ_TIMEOUT_S",
           "SECRETS_EXTENSION_TIMEOUT_S", "SQS_SEND_ATTEMPTS", "SQS_SEND_BACKOFF_BASE_S", "SQS_SEND_BACKOFF_CAP_S"]

"""Fuzzing every handler with generated events (hypothesis), in process: moto, a real PostgreSQL.

Each test feeds one handler ``examples()`` events: mostly of its own type, built from AWS's
schema with hostile values and damaged shapes (``event_strategies``), the rest of every other
type and arbitrary JSON. After each one its harness checks that nothing raised but the handler's
own input errors, that the outcome is the one the contract gives, and that nothing was lost
(``handler_harness``). The default profile is derandomized (the same examples on every run);
``HYPOTHESIS_PROFILE=nightly`` draws many more, fresh ones. The SQS partial-batch fuzz through
the local sandbox is in ``tests/integration/handlers/test_sandbox_sqs_fuzz.py``.
"""
from __future__ import annotations

import event_strategies as es
import pytest
from handler_harness import *  # noqa: F403 - fixtures
from handler_harness import invoke, upload_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

# pyproject's 600 s per test is plenty for 1,000 examples (about 10-30 s); the nightly profile's
# 20,000 need more, on a busy machine most.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.timeout(max(600, es.examples() // 5))]

UPLOADED = tuple(sorted(upload_corpus()))
HTTP = es.http_api_events()
AUTHORIZER = es.authorizer_events()
SQS_DATA = es.sqs_events(es.data_message_bodies())
SQS_SNS = es.sqs_events(es.sns_via_sqs_bodies())
SNS = es.sns_events()
S3 = es.s3_events(UPLOADED)
SCHEDULED = es.scheduled_events()


def fuzz(harness, event, **reset) -> None:
    harness.reset(**reset)
    harness.check(event, invoke(harness.module, event))


@settings(max_examples=es.examples())
@given(event=st.one_of(HTTP, HTTP, HTTP, HTTP, es.foreign_events(AUTHORIZER, SQS_DATA, SNS, S3, SCHEDULED)))
def test_fuzz_api_processor(api_harness, event):
    fuzz(api_harness, event)


@settings(max_examples=es.examples())
@given(event=st.one_of(
    es.authorizer_events(st.one_of(st.sampled_from(["valid-0", "valid-1"]), es.hostile_text(60),
                                   es.hostile_jwts().map(lambda t: "Bearer " + t))),
    es.authorizer_events(es.hostile_jwts().map(lambda t: "Bearer " + t)),
    es.foreign_events(HTTP, SQS_DATA, SNS, S3, SCHEDULED)))
def test_fuzz_auth_handler(auth_harness, event):
    # "valid-N" stands for the harness's N-th valid token (minted at setup, so outside the strategy).
    tokens = list(auth_harness.valid_tokens)
    for placement in (event.get("identitySource") if isinstance(event, dict) else None,
                      event.get("headers") if isinstance(event, dict) else None):
        if isinstance(placement, list):
            placement[:] = [f"Bearer {tokens[int(v[-1])]}" if v in ("valid-0", "valid-1") else v for v in placement]
        elif isinstance(placement, dict):
            for name, value in placement.items():
                if value in ("valid-0", "valid-1"):
                    placement[name] = f"Bearer {tokens[int(value[-1])]}"
    fuzz(auth_harness, event)


@settings(max_examples=es.examples())
@given(event=st.one_of(SQS_DATA, SQS_DATA, SQS_DATA, es.foreign_events(SQS_SNS, HTTP, SNS, S3, SCHEDULED)))
def test_fuzz_data_processor(data_harness, event):
    fuzz(data_harness, event)


@settings(max_examples=es.examples())
@given(event=st.one_of(S3, S3, S3, es.foreign_events(SQS_DATA, HTTP, SNS, SCHEDULED)))
def test_fuzz_file_processor(file_harness, event):
    fuzz(file_harness, event)


@settings(max_examples=es.examples())
@given(event=st.one_of(SCHEDULED, SCHEDULED, SCHEDULED, es.foreign_events(SQS_DATA, HTTP, SNS, S3)),
       rows=es.DUE_ROWS)
def test_fuzz_scheduler(scheduler_harness, event, rows):
    fuzz(scheduler_harness, event, rows=rows)


@settings(max_examples=es.examples())
@given(event=st.one_of(SQS_SNS, SQS_SNS, SNS, SNS, es.foreign_events(SQS_DATA, HTTP, S3, SCHEDULED)))
def test_fuzz_notification_handler(notification_harness, event):
    fuzz(notification_harness, event)

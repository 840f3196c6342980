"""file-processor against moto's server over real HTTP, where botocore's requests go through http.client."""
from __future__ import annotations

import json

import pytest
from handler_kit import LambdaContext, forget_handler_modules

UPLOADS, PROCESSED = "lwb-test-uploads", "lwb-test-processed"


@pytest.fixture
def file_processor(handler_factory, local_aws, moto_endpoint, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    s3 = local_aws("s3")
    s3.create_bucket(Bucket=UPLOADS)
    s3.create_bucket(Bucket=PROCESSED)
    local_aws("events").create_event_bus(Name="lwb-test-bus")
    module = handler_factory("file_processor", AWS_ENDPOINT_URL=moto_endpoint)
    yield module, s3
    forget_handler_modules()


# LF is covered in process (test_fuzz_regressions): moto's server cannot store a key with LF in its path.
@pytest.mark.parametrize("key", ["incoming/carriage\rreturn.csv", "incoming/tab\tand\x7f.json"])
def test_keys_with_control_characters_are_processed(file_processor, key):
    # GIVEN an upload whose key holds a control character (S3 allows them; the event has %0A, %0D...)
    module, s3 = file_processor
    s3.put_object(Bucket=UPLOADS, Key=key, Body=b"{}" if key.endswith(".json") else b"a,b\n1,2\n")
    from urllib.parse import quote_plus

    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": UPLOADS}, "object": {"key": quote_plus(key, safe="/"), "size": 8}}}]}
    # WHEN it is handled over real HTTP (http.client refuses CR in a header value: botocore's
    # HTTPClientError became an AwsServiceError, so the upload was retried as if S3 were down)
    result = module.handler(event, LambdaContext())
    # THEN it is processed, and the key reaches the S3 metadata as printable ASCII
    assert result["results"][0]["status"] == "processed", result
    head = s3.head_object(Bucket=PROCESSED, Key=f"metadata/{key}.json")
    assert all(ch.isprintable() and ch.isascii() for ch in head["Metadata"]["source-key"])
    assert json.loads(s3.get_object(Bucket=PROCESSED, Key=f"metadata/{key}.json")["Body"].read())["source-key"] == key

"""dataPipeline's seams: each step's output, mapped by the definition, is the next step's valid input.

The definition is ``infra.pipeline.definition`` itself; its JSONPath mappings are evaluated with
the JSONPath of moto's ASL executor (``moto.stepfunctions.parser.asl.utils.json_path``), and the
steps are the real handlers (real PostgreSQL, moto). The input is a FileProcessed event as
EventBridge delivers it (moto's bus: put_events, a rule, a queue target). The integration tier
(``tests/integration/local/test_pipeline.py``) runs the same definition in moto's executor.
"""
from __future__ import annotations

import json

import boto3
import pytest
from handler_kit import LambdaContext, db_rows
from moto.stepfunctions.parser.asl.utils.json_path import extract_json

from infra import pipeline
from infra.config import RetryParams

FILE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:lwb-test-file-processor"
DATA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:lwb-test-data-processor"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:lwb-test-notifications"
DEFINITION = pipeline.definition(FILE_ARN, DATA_ARN, TOPIC_ARN, RetryParams(), 300)


def _evaluate(expression: str, data, context):
    if expression.startswith("States.JsonToString(") and expression.endswith(")"):
        return json.dumps(_evaluate(expression[len("States.JsonToString("):-1], data, context), separators=(",", ":"))
    if expression.startswith("$$."):
        return extract_json("$" + expression[2:], context)
    return extract_json(expression, data)


def _resolve(template, data, context):
    """A Parameters / ResultSelector template applied to ``data`` (keys ending in ``.$`` are paths)."""
    if isinstance(template, dict):
        return {(key[:-2] if key.endswith(".$") else key):
                (_evaluate(value, data, context) if key.endswith(".$") else _resolve(value, data, context))
                for key, value in template.items()}
    if isinstance(template, list):
        return [_resolve(item, data, context) for item in template]
    return template


def _place(data: dict, path: str | None, value):
    if path is None:
        return data
    if path == "$":
        return value
    assert path.startswith("$.") and "." not in path[2:], f"only top-level ResultPaths are used: {path}"
    return {**data, path[2:]: value}


def run(event: dict, steps: dict, name: str = "exec-1") -> tuple[str, dict, list[dict]]:
    """Walk DEFINITION with ``steps`` (FunctionName -> handler); return the end (state, data, publishes)."""
    states, state, data, published = DEFINITION["States"], DEFINITION["StartAt"], event, []
    context = {"Execution": {"Name": name}}
    while True:
        spec = states[state]
        if spec["Type"] == "Task":
            parameters = _resolve(spec["Parameters"], data, context)
            try:
                if spec["Resource"].endswith(":lambda:invoke"):
                    result = {"Payload": steps[parameters["FunctionName"]](parameters["Payload"], LambdaContext())}
                else:
                    published.append(parameters)
                    result = {"MessageId": "m-1"}
            except Exception as error:  # noqa: BLE001 - the Catch's States.ALL, as Lambda reports a handler's error
                cause = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__})
                catch = spec["Catch"][0]
                data, state = _place(data, catch["ResultPath"], {"Error": type(error).__name__, "Cause": cause}), catch["Next"]
                continue
            if "ResultSelector" in spec:
                result = _resolve(spec["ResultSelector"], result, context)
            data = _place(data, spec.get("ResultPath", "$"), result)
            if "OutputPath" in spec:
                data = extract_json(spec["OutputPath"], data)
        elif spec["Type"] == "Pass":
            data = _place(data, spec["ResultPath"], _resolve(spec["Parameters"], data, context))
        elif spec["Type"] == "Fail":
            return state, {"Error": _evaluate(spec["ErrorPath"], data, context),
                           "Cause": _evaluate(spec["CausePath"], data, context)}, published
        if spec.get("End"):
            return state, data, published
        state = spec["Next"]


@pytest.fixture
def file_processed_event(aws):
    """A FileProcessed event as EventBridge delivers it to a target (moto's bus, rule and queue target)."""
    events, sqs = boto3.client("events", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name="lwb-test-bus")
    url = sqs.create_queue(QueueName="delivered")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="processed", EventBusName="lwb-test-bus", EventPattern=json.dumps(
        {"source": ["workbook.file-processor"], "detail-type": ["FileProcessed"]}))
    events.put_targets(Rule="processed", EventBusName="lwb-test-bus", Targets=[{"Id": "q", "Arn": arn}])

    def deliver(detail: dict) -> dict:
        events.put_events(Entries=[{"Source": "workbook.file-processor", "DetailType": "FileProcessed",
                                    "EventBusName": "lwb-test-bus", "Detail": json.dumps(detail)}])
        (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=2)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return json.loads(message["Body"])
    return deliver


@pytest.fixture
def steps(handler_factory, db_secret):
    file_processor = handler_factory("file_processor")
    data_processor = handler_factory("data_processor")
    return {FILE_ARN: file_processor.handler, DATA_ARN: data_processor.handler}


CSV_DETAIL = {"bucket": "lwb-test-uploads", "key": "uploads/q3.csv", "processed_bucket": "lwb-test-processed",
              "sha256": "ab" * 32, "bytes": 12, "type": "csv", "columns": 2, "rows": 2, "outputs": ["metadata/q3.csv.json"]}


def test_a_processed_file_flows_through_every_step_into_the_database(file_processed_event, steps, db_secret):
    # GIVEN the FileProcessed event of a CSV, as a rule target receives it
    event = file_processed_event(CSV_DETAIL)
    # WHEN the definition runs over the real handlers
    state, output, published = run(event, steps)
    # THEN it ends at Notify with the stored record, published as "succeeded"
    assert state == "Notify"
    assert output["record_key"].startswith("file:") and output["deliveries"] == 1
    assert published[-1]["Subject"] == pipeline.SUCCEEDED_SUBJECT and json.loads(published[-1]["Message"]) == output
    # AND the row holds the file's metadata under kind file.csv
    rows = db_rows(db_secret, "SELECT record_key, kind, payload FROM processed_records")
    assert [(r[0], r[1], r[2]["key"]) for r in rows] == [(output["record_key"], "file.csv", "uploads/q3.csv")]
    # AND the same file again updates the same row (its business key is the file's location)
    assert run(event, steps, name="exec-2")[1] == {"record_key": output["record_key"], "deliveries": 2}


def test_a_record_the_data_step_cannot_store_fails_the_step_into_the_catch(file_processed_event, steps, db_secret):
    # GIVEN a processed JSON file whose key holds a NUL (valid JSON; PostgreSQL's jsonb refuses it)
    event = file_processed_event({**CSV_DETAIL, "key": "uploads/n.json", "type": "json", "keys": ["a\u0000"]})
    # WHEN the definition runs
    state, failure, published = run(event, steps)
    # THEN the data step raised, the Catch named it, the failure was published, and nothing was stored
    assert state == "Failed" and failure["Error"] == "ValidationError" and "NUL" in failure["Cause"]
    notice = json.loads(published[-1]["Message"])
    assert published[-1]["Subject"] == pipeline.FAILED_SUBJECT
    assert (notice["step"], notice["error"]) == ("ProcessData", "ValidationError")
    assert db_rows(db_secret, "SELECT count(*) FROM processed_records") == [[0]]


@pytest.mark.parametrize(("execution_input", "message"), [
    ({"bucket": "b", "key": "k"}, "expected a FileProcessed event"),
    ({"source": "workbook.file-processor", "detail-type": "FileProcessed"}, "field 'detail' must be an object"),
    ({"source": "workbook.file-processor", "detail-type": "FileProcessed", "detail": {"bucket": "b", "type": "csv"}},
     "field 'detail.key' must be a non-empty string"),
    ({"source": "workbook.file-processor", "detail-type": "FileProcessed",
      "detail": {"bucket": "b", "key": "k", "type": "C S V"}}, "field 'detail.type'"),
])
def test_a_malformed_input_is_rejected_by_the_first_step_naming_the_field(steps, execution_input, message):
    # GIVEN an execution input that is not a well-formed FileProcessed event
    # WHEN the definition runs
    state, failure, published = run(execution_input, steps)
    # THEN ProcessFile fails with InvalidEvent, the message names what is wrong, and the failure is published
    assert state == "Failed" and failure["Error"] == "InvalidEvent"
    assert message in json.loads(failure["Cause"])["errorMessage"]
    assert json.loads(published[-1]["Message"])["step"] == "ProcessFile"


def test_every_state_is_reachable_and_every_transition_lands_on_a_state():
    states = DEFINITION["States"]
    targets = {DEFINITION["StartAt"]}
    for spec in states.values():
        targets |= {spec[key] for key in ("Next", "Default") if key in spec}
        targets |= {catch["Next"] for catch in spec.get("Catch", [])}
    # THEN every target exists and every state is a target (nothing unreachable)
    assert targets == set(states)
    # AND every Lambda step retries Lambda's service errors and catches everything else
    for name in pipeline.STEPS:
        assert states[name]["Retry"][0]["ErrorEquals"] == pipeline.LAMBDA_SERVICE_ERRORS
        assert states[name]["Catch"][0]["ErrorEquals"] == ["States.ALL"]

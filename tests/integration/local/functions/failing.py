"""Fails on demand: raises, or emits an EMF metric and returns SQS partial-batch responses."""
import json


class PoisonError(ValueError):
    pass


def handler(event, context):
    records = event.get("Records") if isinstance(event, dict) else None
    if records and records[0].get("eventSource") == "aws:sqs":
        failures = []
        for record in records:
            body = json.loads(record["body"]) if record["body"].startswith("{") else {"poison": True}
            if body.get("poison"):
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                print(json.dumps({"processed": body.get("id"), "receive_count": record["attributes"]["ApproximateReceiveCount"]}))
        return {"batchItemFailures": failures}
    if event.get("emf"):
        print(json.dumps({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "LambdaWorkbook",
              "Dimensions": [["service"]], "Metrics": [{"Name": "Widgets", "Unit": "Count"}]}]},
              "service": "failing", "Widgets": 3}))
    if event.get("fail", True):
        raise PoisonError(event.get("message", "this input is poison"))
    return {"ok": True}

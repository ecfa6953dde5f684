"""A function for testing the local Lambda runner: it does what each message body says."""

import time


def lambda_handler(event, context):
    if "Records" not in event:
        if event.get("sleep"):
            time.sleep(event["sleep"])
        return {
            "remaining_ms": context.get_remaining_time_in_millis(),
            "request_id": context.aws_request_id,
            "event": event,
        }
    failures = []
    for record in event["Records"]:
        if record.get("eventSource") == "aws:s3":
            raise RuntimeError("cannot convert " + record["s3"]["object"]["key"])
        body = record["body"]
        if body.startswith("raise"):
            raise RuntimeError("asked to fail the whole batch")
        if body.startswith("fail-item"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}

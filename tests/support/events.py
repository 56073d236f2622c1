"""Builders of AWS trigger events for handler tests (API Gateway REST proxy, SQS FIFO)."""

from __future__ import annotations

import json
import uuid
from typing import Any


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (payload v1) proxy event as Lambda receives it."""
    headers = dict(headers or {})
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/test{path}",
            "stage": "test",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "pytest")},
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


def sqs_event(bodies: list[tuple[str, Any]], *, queue: str = "signals.fifo") -> dict[str, Any]:
    """An SQS FIFO batch: ``bodies`` are (message group, body) pairs, in queue order."""
    records = []
    for index, (group, body) in enumerate(bodies):
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"handle-{index}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "MessageGroupId": group,
                    "MessageDeduplicationId": f"dedup-{index}",
                    "SequenceNumber": str(10_000 + index),
                    "SentTimestamp": "1700000000000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-west-2:123456789012:{queue}",
                "awsRegion": "us-west-2",
            }
        )
    return {"Records": records}


class FakeLambdaContext:
    """The attributes of a Lambda context that Powertools reads."""

    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms

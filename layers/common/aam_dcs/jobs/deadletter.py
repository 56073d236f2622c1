"""Dead-lettering with a reason: permanent failures go to the queue's DLQ at once, not after N retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.aws import new_client

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


class SqsDeadLetters:
    """Sends the original body to the DLQ with ``reason`` and the source message's metadata."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    @cached_property
    def client(self) -> SQSClient:
        return new_client("sqs")

    def send(self, record: SQSRecord, reason: str, details: Mapping[str, Any]) -> None:
        self.client.send_message(**dead_letter_message(self.queue_url, record, reason, details))


class InMemoryDeadLetters:
    """The fake for unit tests: keeps (message id, body, reason, details)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def send(self, record: SQSRecord, reason: str, details: Mapping[str, Any]) -> None:
        with self._lock:
            self.messages.append((record.message_id, record.body, reason, dict(details)))


def dead_letter_message(queue_url: str, record: SQSRecord, reason: str, details: Mapping[str, Any]) -> dict[str, Any]:
    group = record.attributes.message_group_id or record.message_id
    attributes = {
        "reason": reason,
        "details": json.dumps(dict(details), default=str, separators=(",", ":")),
        "source_message_id": record.message_id,
        "receive_count": record.attributes.approximate_receive_count,
    }
    message: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MessageBody": record.body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": str(value)[:1024]} for name, value in attributes.items()
        },
    }
    if queue_url.endswith(".fifo"):
        message["MessageGroupId"] = group
        message["MessageDeduplicationId"] = record.message_id
    return message

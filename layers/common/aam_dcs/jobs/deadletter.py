"""Dead-lettering with a reason: permanent failures go to the queue's DLQ at once, not after N retries.

A dead letter carries the source message's ID in its ``source_message_id`` attribute. A replayed
dead letter (:mod:`aam_dcs.jobs.replay`) carries the same attribute back to the source queue, so a
message keeps one identity however often it is dead-lettered and replayed:
:func:`original_message_id` is that identity, and the signal worker's idempotency key uses it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.aws import new_client

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: The message attribute that names the original message a dead letter, or a replayed one, stands for.
ORIGINAL_ID_ATTRIBUTE: Final = "source_message_id"


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
        ORIGINAL_ID_ATTRIBUTE: original_message_id(record),
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


def original_message_id(record: SQSRecord) -> str:
    """The message's own ID, or for a replayed dead letter the ID of the message it stands for."""
    attributes = record.get("messageAttributes") or {}
    value = (attributes.get(ORIGINAL_ID_ATTRIBUTE) or {}).get("stringValue")
    return str(value) if value else record.message_id

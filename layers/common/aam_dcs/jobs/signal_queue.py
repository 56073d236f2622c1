"""The signal queue (SQS FIFO) behind a small interface, with an in-memory fake for unit tests.

- ``send``: one ``SendMessage`` per asynchronous call (message group = the visitor, deduplication
  ID = ``event_id`` or a content hash); returns the SQS message ID.
- ``delay``: ``ChangeMessageVisibility`` for messages handed back to the queue, so a retry comes
  back after a backoff instead of after the queue's whole visibility timeout. It is best effort: a
  message whose visibility cannot be changed still comes back when its timeout ends.

boto3 is imported on first use, not at import time.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Protocol

from aam_dcs.aws import new_client
from aam_dcs.observability import logger
from aam_dcs.signals.messages import QueueMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: SQS caps a visibility timeout at 12 hours.
MAX_VISIBILITY_SECONDS: Final = 43_200
BATCH_LIMIT: Final = 10


class SignalQueue(Protocol):
    def send(self, message: QueueMessage) -> str:
        """Enqueue one message; returns its message ID."""
        ...

    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        """Make each received message visible again after the given number of seconds."""
        ...


class SqsSignalQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self._lock = threading.Lock()

    @property
    def client(self) -> SQSClient:
        with self._lock:  # boto3 builds clients unsafely when several threads do it at once
            return self._client

    @cached_property
    def _client(self) -> SQSClient:
        return new_client("sqs")

    def send(self, message: QueueMessage) -> str:
        answer = self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=message.body,
            MessageGroupId=message.group_id,
            MessageDeduplicationId=message.deduplication_id,
        )
        return answer["MessageId"]

    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": _clamp(seconds)}
            for index, (handle, seconds) in enumerate(receipt_handles.items())
        ]
        for start in range(0, len(entries), BATCH_LIMIT):
            self._change_visibility(entries[start : start + BATCH_LIMIT])

    def _change_visibility(self, entries: list[dict[str, Any]]) -> None:
        try:
            answer = self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]
        except Exception as error:  # best effort: the queue's own visibility timeout still applies
            logger.warning("could not delay retried messages", extra={"error": type(error).__name__})
            return
        failed = answer.get("Failed") or []
        if failed:
            logger.warning("could not delay some retried messages", extra={"codes": [f.get("Code") for f in failed]})


def _clamp(seconds: int) -> int:
    return max(0, min(MAX_VISIBILITY_SECONDS, int(seconds)))


@dataclass
class InMemorySignalQueue:
    """The fake: keeps sent messages, drops duplicates per (group, deduplication ID) like SQS."""

    messages: list[QueueMessage] = field(default_factory=list)
    delays: dict[str, int] = field(default_factory=dict)
    _ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, message: QueueMessage) -> str:
        key = (message.group_id, message.deduplication_id)
        with self._lock:
            if key not in self._ids:
                self._ids[key] = str(uuid.UUID(int=next(self._counter) + 1))
                self.messages.append(message)
            return self._ids[key]

    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        with self._lock:
            self.delays.update({handle: _clamp(seconds) for handle, seconds in receipt_handles.items()})

"""The signal queue (SQS FIFO) behind a small interface, with an in-memory fake for unit tests.

- ``send``: one ``SendMessage`` per asynchronous call (message group = the visitor, deduplication
  ID = ``event_id`` or a content hash); returns the SQS message ID.
- ``delay``: ``ChangeMessageVisibility`` for messages handed back to the queue, so a retry comes
  back after a backoff instead of after the queue's whole visibility timeout
  (:mod:`aam_dcs.jobs.visibility`).

boto3 is imported on first use, not at import time.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aam_dcs.jobs.visibility import InMemoryVisibility, SqsVisibility
from aam_dcs.signals.messages import QueueMessage


class SignalQueue(Protocol):
    def send(self, message: QueueMessage) -> str:
        """Enqueue one message; returns its message ID."""
        ...

    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        """Make each received message visible again after the given number of seconds."""
        ...


class SqsSignalQueue(SqsVisibility):
    """``SendMessage`` into the queue; ``delay`` (retry backoff) comes from :class:`SqsVisibility`."""

    def send(self, message: QueueMessage) -> str:
        answer = self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=message.body,
            MessageGroupId=message.group_id,
            MessageDeduplicationId=message.deduplication_id,
        )
        return answer["MessageId"]


@dataclass
class InMemorySignalQueue(InMemoryVisibility):
    """The fake: keeps sent messages, drops duplicates per (group, deduplication ID) like SQS."""

    messages: list[QueueMessage] = field(default_factory=list)
    _ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, message: QueueMessage) -> str:
        key = (message.group_id, message.deduplication_id)
        with self._lock:
            if key not in self._ids:
                self._ids[key] = str(uuid.UUID(int=next(self._counter) + 1))
                self.messages.append(message)
            return self._ids[key]

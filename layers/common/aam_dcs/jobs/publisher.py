"""Fan-out to an SQS FIFO queue: ``SendMessageBatch`` in groups of 10, failed entries retried.

``QueuePublisher(queue_url).publish(messages)`` sends every message and returns the ones that
still failed after ``max_attempts`` (empty when all went through): a caller counts and reports
them, nothing is silently lost. Entries SQS refuses as the sender's fault (bad group ID, body too
large) are not retried. A batch also stays under SQS's size cap for one call (256 KiB).

Each message names its message group (one visitor: ``mid:…``, ``uuid:…``, ``cid:<hash>`` — never
a raw customer ID, since SQS shows group IDs in consoles) and its deduplication ID (SQS drops a
second message with the same ID in the same group within 5 minutes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Final, Protocol

from aam_dcs.aws import new_client

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES: Final = 10
MAX_BATCH_BYTES: Final = 256 * 1024
MAX_ID_CHARS: Final = 128
MAX_ATTEMPTS: Final = 3
RETRY_DELAY_SECONDS: Final = 0.05


@dataclass(frozen=True)
class QueueMessage:
    """One message for a FIFO queue: a JSON body, its message group and its deduplication ID."""

    body: str
    group_id: str
    deduplication_id: str

    def __post_init__(self) -> None:
        for name in ("group_id", "deduplication_id"):
            value: str = getattr(self, name)
            if not 0 < len(value) <= MAX_ID_CHARS or not value.isascii() or not value.isprintable():
                raise ValueError(f"{name} must be 1 to {MAX_ID_CHARS} printable ASCII characters")

    @property
    def size(self) -> int:
        return len(self.body.encode("utf-8"))


@dataclass(frozen=True)
class PublishFailure:
    """A message that was not sent: SQS's error code and whether the message itself was at fault."""

    message: QueueMessage
    code: str
    sender_fault: bool


class MessagePublisher(Protocol):
    def publish(self, messages: Sequence[QueueMessage]) -> list[PublishFailure]:
        """Send the messages in order; return those that could not be sent."""
        ...


class QueuePublisher:
    """Publishes to one SQS FIFO queue with ``SendMessageBatch``."""

    def __init__(
        self,
        queue_url: str,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        retry_delay: float = RETRY_DELAY_SECONDS,
        client: SQSClient | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self._client = client

    @cached_property
    def client(self) -> SQSClient:
        """The given client, else one built on first use."""
        return self._client if self._client is not None else new_client("sqs")

    def publish(self, messages: Sequence[QueueMessage]) -> list[PublishFailure]:
        failures: list[PublishFailure] = []
        for batch in batches(messages):
            failures += self._send_batch(batch)
        return failures

    def _send_batch(self, batch: list[QueueMessage]) -> list[PublishFailure]:
        pending = dict(enumerate(batch))
        refused: list[PublishFailure] = []
        retryable: dict[int, PublishFailure] = {}
        for attempt in range(self.max_attempts):
            if attempt:
                time.sleep(self.retry_delay * 2 ** (attempt - 1))
            failed = self._send_entries(pending)
            refused += [failure for failure in failed.values() if failure.sender_fault]
            retryable = {index: failure for index, failure in failed.items() if not failure.sender_fault}
            pending = {index: pending[index] for index in retryable}
            if not pending:
                break
        return refused + list(retryable.values())

    def _send_entries(self, pending: dict[int, QueueMessage]) -> dict[int, PublishFailure]:
        """One ``SendMessageBatch`` call; the entries it failed, by index."""
        answer = self.client.send_message_batch(
            QueueUrl=self.queue_url, Entries=[_entry(str(index), message) for index, message in pending.items()]
        )
        failed: dict[int, PublishFailure] = {}
        for entry in answer.get("Failed", []):
            index = int(entry["Id"])
            failed[index] = PublishFailure(pending[index], entry["Code"], entry["SenderFault"])
        return failed


def batches(messages: Sequence[QueueMessage]) -> Iterator[list[QueueMessage]]:
    """Consecutive groups of at most 10 messages and 256 KiB of bodies (order kept)."""
    batch: list[QueueMessage] = []
    size = 0
    for message in messages:
        if batch and (len(batch) == MAX_BATCH_ENTRIES or size + message.size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += message.size
    if batch:
        yield batch


def _entry(entry_id: str, message: QueueMessage) -> SendMessageBatchRequestEntryTypeDef:
    return {
        "Id": entry_id,
        "MessageBody": message.body,
        "MessageGroupId": message.group_id,
        "MessageDeduplicationId": message.deduplication_id,
    }


@dataclass
class InMemoryQueue:
    """The fake for unit tests: keeps what was published; ``fail`` scripts failures by group ID."""

    messages: list[QueueMessage] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def publish(self, messages: Sequence[QueueMessage]) -> list[PublishFailure]:
        failures = []
        with self._lock:
            for message in messages:
                code = self.fail.get(message.group_id)
                if code is None:
                    self.messages.append(message)
                else:
                    failures.append(PublishFailure(message, code, sender_fault=True))
        return failures

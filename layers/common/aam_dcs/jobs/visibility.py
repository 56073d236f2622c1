"""Changing the visibility of received messages: how a worker's retry backoff reaches SQS.

``delay`` makes each failed message visible again after its delay rather than at the end of the
queue's visibility timeout. It is best effort: a message whose visibility cannot be changed still
comes back when its timeout ends. The function needs ``sqs:ChangeMessageVisibility`` on its queue,
which the policy SAM adds for an SQS event does not grant (the template adds it). boto3 is imported
on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Protocol

from aam_dcs.aws import new_client
from aam_dcs.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: SQS caps a visibility timeout at 12 hours.
MAX_VISIBILITY_SECONDS: Final = 43_200
BATCH_LIMIT: Final = 10


class VisibilityQueue(Protocol):
    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        """Make each received message visible again after the given number of seconds."""
        ...


class SqsVisibility:
    """``ChangeMessageVisibilityBatch`` on one queue, ten messages per call."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    @cached_property
    def client(self) -> SQSClient:
        return new_client("sqs")  # builds one client at a time, so threads may race here safely

    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": clamp(seconds)}
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


@dataclass
class InMemoryVisibility:
    """The fake: the last delay asked for each receipt handle."""

    delays: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        with self._lock:
            self.delays.update({handle: clamp(seconds) for handle, seconds in receipt_handles.items()})


def clamp(seconds: int) -> int:
    return max(0, min(MAX_VISIBILITY_SECONDS, int(seconds)))

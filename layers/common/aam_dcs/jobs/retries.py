"""Retry backoff for the queue workers: a failed message comes back after a delay, not a timeout.

SQS makes a failed message visible again when its visibility timeout ends, which is sized for the
longest batch (30 minutes in the template). The workers instead set each failed message's
visibility to a backoff that grows with its ``ApproximateReceiveCount`` (30 s, doubling, at most
15 minutes); a wait the DCS asked for (``Retry-After``, an open circuit breaker) or the denylist
guard's window comes first. The later messages of a failed message's group, which the FIFO worker
skipped, come back with it, so the group stays in order.

The delays are applied through :mod:`aam_dcs.jobs.visibility`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.errors import DcsError, RateLimited
from aam_dcs.jobs.worker import process_fifo_batch, receive_count

if TYPE_CHECKING:
    from aam_dcs.jobs.visibility import VisibilityQueue

#: Handles one message; for a retryable failure it records the message's delay and raises.
RetryingHandler = Callable[[SQSRecord, dict[str, int]], None]

MAX_RECEIVES_HINT: Final = 16


@dataclass(frozen=True)
class Backoff:
    """Seconds before the n-th retry: ``base * 2**(n-1)``, capped (n = ApproximateReceiveCount)."""

    base_seconds: int = 30
    max_seconds: int = 900

    def delay(self, receive_count: int) -> int:
        exponent = min(max(receive_count, 1), MAX_RECEIVES_HINT) - 1
        return int(min(self.max_seconds, self.base_seconds * 2**exponent))


def retry_delay(error: BaseException, record: SQSRecord, backoff: Backoff) -> int:
    """The guard's wait as is; a wait the DCS asked for, if longer than the backoff; else the backoff."""
    seconds = backoff.delay(receive_count(record))
    if isinstance(error, RateLimited):
        return max(1, math.ceil(error.retry_after))
    if isinstance(error, DcsError) and error.retry_after:
        return max(seconds, math.ceil(error.retry_after))
    return seconds


def failed_delays(
    records: list[dict[str, Any]], failures: list[dict[str, str]], delays: Mapping[str, int], backoff: Backoff
) -> dict[str, int]:
    """Receipt handle → seconds for every failed message: its own delay, else its group's, else the backoff."""
    failed = {failure["itemIdentifier"] for failure in failures}
    by_group: dict[str, int] = {}
    handles: dict[str, int] = {}
    for record in map(SQSRecord, records):
        if record.message_id not in failed:
            continue
        group = record.attributes.message_group_id or record.message_id
        delay = delays.get(record.message_id) or by_group.get(group) or backoff.delay(receive_count(record))
        by_group.setdefault(group, delay)
        handles[record.receipt_handle] = delay
    return handles


def process_with_backoff(
    event: Mapping[str, Any],
    context: Any,
    handle: RetryingHandler,
    *,
    queue: VisibilityQueue | None,
    backoff: Backoff,
    **batch_options: Any,
) -> dict[str, list[dict[str, str]]]:
    """:func:`~aam_dcs.jobs.worker.process_fifo_batch`, then each failed message's delay set on the queue."""
    delays: dict[str, int] = {}
    answer = process_fifo_batch(event, context, lambda record: handle(record, delays), **batch_options)
    failures = answer["batchItemFailures"]
    if queue is not None and failures:
        queue.delay(failed_delays(event.get("Records", []), failures, delays, backoff))
    return answer

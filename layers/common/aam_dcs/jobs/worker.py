"""The SQS FIFO batch worker shared by the queue consumers.

Lambda hands a FIFO batch of up to 10 messages. The DCS answers in 200-500 ms, so processing them
one by one bills ten round trips. Here each message group (one visitor) runs in its own thread, in
order within the group, so a batch of ten visitors takes about one round trip. Powertools'
``SqsFifoPartialProcessor(skip_group_on_error=True)`` gives the failure semantics per group: once a
message fails, the later messages of its group are reported failed without running, and SQS
redelivers them in order.

The threads are the container's, kept from one invocation to the next: starting ten threads costs
milliseconds of every batch, and the adapters' per-thread clients (a DynamoDB resource takes ~10 ms
of CPU to build) are built once per container instead of once per batch. A batch of one message
group runs in the calling thread.

A handler raises ``PermanentFailure`` for a message that must not be retried (invalid, dropped by
the DCS, opted out, denylisted): the worker dead-letters it with the reason and acknowledges it.
Any other exception means "try again later".

SQS counts every receive, including those of the later messages of a group that were skipped
because an earlier one failed, and after ``maxReceiveCount`` moves a message to the DLQ without a
word. Given ``max_receives`` (the queue's ``maxReceiveCount``), the worker dead-letters a message
itself at its last receive, with the reason ``retries_exhausted`` and what kept it back (its own
error, or the earlier message of its group), so every dead letter says why it is there.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.observability import logger, metrics

RecordHandler = Callable[[SQSRecord], None]


class PermanentFailure(Exception):
    """This message can never succeed: dead-letter it with ``reason`` instead of retrying."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class DeadLetters(Protocol):
    def send(self, record: SQSRecord, reason: str, details: Mapping[str, Any]) -> None: ...


def message_body(raw: str) -> dict[str, Any]:
    """A queue message's JSON object; anything else can never succeed, so it is a permanent failure."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError: also an integer past Python's 4,300 digits
        raise PermanentFailure("invalid_message", field="body", rule="must be JSON") from None
    if not isinstance(body, dict):
        raise PermanentFailure("invalid_message", field="body", rule="must be a JSON object")
    return body


def process_fifo_batch(
    event: Mapping[str, Any],
    context: Any,
    handle: RecordHandler,
    *,
    dead_letters: DeadLetters | None = None,
    max_parallel_groups: int = 10,
    max_receives: int | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Process an SQS FIFO event; the answer is Lambda's partial batch response."""
    records = event.get("Records", [])
    groups = records_by_group(records)
    last_receive = LastReceive(max_receives, dead_letters)
    record_handler = _with_dead_letters(handle, dead_letters, last_receive)

    def process(group: list[dict[str, Any]]) -> list[dict[str, str]]:
        return _process_group(group, record_handler, context)

    if len(groups) <= 1 or max_parallel_groups <= 1:
        answers = list(map(process, groups))
    else:
        answers = list(group_threads(max_parallel_groups).map(process, groups))
    failures = [failure for answer in answers for failure in answer]
    return {"batchItemFailures": last_receive.keep_skipped(records, failures)}


_invoker = threading.local()


def group_threads(size: int) -> ThreadPoolExecutor:
    """The calling thread's pool of ``size`` threads for message groups, started on first use and kept.

    Lambda runs a handler from one thread, so this is the container's pool; a local stack that runs
    concurrent "containers" as threads of one process gets a pool for each, as Lambda would.
    """
    pools: dict[int, ThreadPoolExecutor] = _invoker.__dict__.setdefault("pools", {})
    pool = pools.get(size)
    if pool is None:
        pool = pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sqs-group")
    return pool


def records_by_group(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The batch split by message group, each group in queue order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        group = record.get("attributes", {}).get("MessageGroupId") or record.get("messageId", "")
        groups.setdefault(group, []).append(record)
    return list(groups.values())


def _process_group(records: list[dict[str, Any]], handle: RecordHandler, context: Any) -> list[dict[str, str]]:
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # A group that fails entirely is an ordinary partial failure of the whole batch, not an error.
    processor.raise_on_entire_batch_failure = False
    with processor(records, handle, context):
        processor.process()
    return [{"itemIdentifier": str(failure["itemIdentifier"])} for failure in processor.response()["batchItemFailures"]]


def _with_dead_letters(handle: RecordHandler, dead_letters: DeadLetters | None, last: LastReceive) -> RecordHandler:
    def run(record: SQSRecord) -> None:
        last.ran(record)
        try:
            handle(record)
        except PermanentFailure as failure:
            if dead_letters is None:
                # Without a DLQ to record the reason, let SQS retry and redrive after maxReceiveCount.
                logger.warning("permanent failure, no DLQ configured", extra={"reason": failure.reason})
                raise
            _dead_letter(dead_letters, record, failure.reason, failure.details)
        except Exception as error:
            if not last.is_last(record):
                raise
            last.give_up(record, error=type(error).__name__)

    return run


def _dead_letter(dead_letters: DeadLetters, record: SQSRecord, reason: str, details: Mapping[str, Any]) -> None:
    dead_letters.send(record, reason, details)
    metrics.add_metric(name="DeadLettered", unit="Count", value=1)


class LastReceive:
    """Dead-letters, with a reason, what fails (or is skipped) at the queue's last receive."""

    def __init__(self, max_receives: int | None, dead_letters: DeadLetters | None) -> None:
        self.max_receives = max_receives if dead_letters is not None else None
        self.dead_letters = dead_letters
        self._ran: set[str] = set()

    def ran(self, record: SQSRecord) -> None:
        self._ran.add(record.message_id)

    def is_last(self, record: SQSRecord) -> bool:
        return self.max_receives is not None and receive_count(record) >= self.max_receives

    def give_up(self, record: SQSRecord, **details: Any) -> None:
        if self.dead_letters is None:  # is_last() is never true without them
            return
        details = {"receive_count": receive_count(record), **details}
        logger.warning("message dead-lettered at its last receive", extra={"message_id": record.message_id, **details})
        _dead_letter(self.dead_letters, record, "retries_exhausted", details)

    def keep_skipped(self, records: list[dict[str, Any]], failures: list[dict[str, str]]) -> list[dict[str, str]]:
        """The failures minus skipped messages at their last receive, which are dead-lettered instead."""
        if self.max_receives is None or not failures:
            return failures
        failed = {failure["itemIdentifier"] for failure in failures}
        for record in map(SQSRecord, records):
            if record.message_id in failed and record.message_id not in self._ran and self.is_last(record):
                self.give_up(record, skipped="an earlier message of this group kept failing")
                failed.discard(record.message_id)
        return [failure for failure in failures if failure["itemIdentifier"] in failed]


def receive_count(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError):
        return 1

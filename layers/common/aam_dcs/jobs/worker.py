"""The SQS FIFO batch worker shared by the queue consumers.

Lambda hands a FIFO batch of up to 10 messages. The DCS answers in 200-500 ms, so processing them
one by one bills ten round trips. Here each message group (one visitor) runs in its own thread, in
order within the group, so a batch of ten visitors takes about one round trip. Powertools'
``SqsFifoPartialProcessor(skip_group_on_error=True)`` gives the failure semantics per group: once a
message fails, the later messages of its group are reported failed without running, and SQS
redelivers them in order.

A handler raises ``PermanentFailure`` for a message that must not be retried (invalid, dropped by
the DCS, opted out, denylisted): the worker dead-letters it with the reason and acknowledges it.
Any other exception means "try again later".
"""

from __future__ import annotations

import json
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
    except (json.JSONDecodeError, RecursionError):
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
) -> dict[str, list[dict[str, str]]]:
    """Process an SQS FIFO event; the answer is Lambda's partial batch response."""
    groups = records_by_group(event.get("Records", []))
    record_handler = _with_dead_letters(handle, dead_letters)
    workers = max(1, min(len(groups), max_parallel_groups))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sqs-group") as pool:
        answers = list(pool.map(lambda group: _process_group(group, record_handler, context), groups))
    return {"batchItemFailures": [failure for answer in answers for failure in answer]}


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


def _with_dead_letters(handle: RecordHandler, dead_letters: DeadLetters | None) -> RecordHandler:
    def run(record: SQSRecord) -> None:
        try:
            handle(record)
        except PermanentFailure as failure:
            if dead_letters is None:
                # Without a DLQ to record the reason, let SQS retry and redrive after maxReceiveCount.
                logger.warning("permanent failure, no DLQ configured", extra={"reason": failure.reason})
                raise
            dead_letters.send(record, failure.reason, failure.details)
            metrics.add_metric(name="DeadLettered", unit="Count", value=1)

    return run

"""Feeds SQS messages to a function the way Lambda's SQS event source mapping does.

One :class:`SqsPoller` per ``SQS`` event in the template. It runs ``maximum_concurrency`` threads
(``ScalingConfig.MaximumConcurrency``: the number of batches in flight at once); each receives up
to ``batch_size`` messages, builds the SQS event exactly as Lambda does, and calls the handler
in-process. With ``ReportBatchItemFailures`` the messages not listed in ``batchItemFailures`` are
deleted and the listed ones stay; an exception (or a malformed answer) leaves the whole batch.
Messages left in the queue come back when their visibility timeout ends; locally they are made
visible again after ``retry_delay_seconds`` instead of the queue's timeout (30 min in the template)
so retries show up quickly (:meth:`SqsPoller._leave` says why that is done with visibility 0).
After ``maxReceiveCount`` receives the queue's redrive policy moves a message to its dead-letter
queue: moto does that on receive, as SQS does, so the poller does not.

FIFO: a message group with a message in flight gets nothing more until that message is gone or
visible again. moto enforces that per queue; the poller also serializes its receives, keeps its own
record of the groups its batches hold and gives back (visibility 0, counted in
``stats.fifo_conflicts``) anything received for a group another batch holds.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.aws import client, patch_moto_sqs

log = logging.getLogger("local.poller")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class SqsSourceConfig:
    """Where to read and how (the ``SQS`` event's properties, resolved)."""

    queue_url: str
    queue_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = True
    maximum_concurrency: int = 2
    fifo: bool = False
    name: str = ""
    region: str = "us-west-2"
    wait_seconds: int = 1  # long-poll wait of each ReceiveMessage
    retry_delay_seconds: int = 1  # visibility given to failed messages (local stand-in for the timeout)


@dataclass
class PollerStats:
    batches: int = 0
    received: int = 0
    deleted: int = 0
    failed: int = 0  # messages left for retry
    handler_errors: int = 0  # batches whose invocation raised
    fifo_conflicts: int = 0  # messages given back because their group was in flight elsewhere
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k != "lock"}


def lambda_sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage entry."""
    record_attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "0",
        "SenderId": "",
        "ApproximateFirstReceiveTimestamp": "0",
    }
    record_attributes.update(message.get("Attributes") or {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": record_attributes,
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message.get("Body", "").encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": value.get("StringListValues") or [],
        "binaryListValues": [_b64(v) for v in value.get("BinaryListValues") or []],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    return attribute


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()


def failed_message_ids(result: Any, message_ids: list[str]) -> list[str] | None:
    """The IDs a ``ReportBatchItemFailures`` answer lists; None means "the whole batch failed".

    Lambda treats an answer naming an ID that is empty or not in the batch as a failure of the
    whole batch; ``None``/``{}``/an empty list means every message succeeded.
    """
    if result is None:
        return []
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        return None
    ids = []
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in message_ids:
            return None
        ids.append(identifier)
    return ids


class SqsPoller:
    """Polls one queue and invokes ``handler(event, context)`` with SQS batches.

    ``handler`` is any callable (the in-process Lambda function, or a test's stand-in);
    ``context_factory`` makes the context object passed with each batch.
    """

    def __init__(
        self,
        config: SqsSourceConfig,
        handler: Handler,
        *,
        endpoint: str,
        context_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        self.handler = handler
        self.context_factory = context_factory or (lambda: None)
        self.stats = PollerStats()
        patch_moto_sqs()  # moto's SQS made thread-safe and fast (see there); nothing changes against real SQS
        self._sqs = client("sqs", endpoint, config.region)
        self._stop = threading.Event()
        self._receive_lock = threading.Lock()
        self._groups_lock = threading.Lock()
        self._groups_in_flight: dict[str, int] = {}
        self._busy = 0
        self._threads: list[threading.Thread] = []
        self._retries: list[tuple[float, list[dict[str, Any]]]] = []
        self._retry_cond = threading.Condition()

    @property
    def name(self) -> str:
        return self.config.name or self.config.queue_url.rsplit("/", 1)[-1]

    def start(self) -> None:
        self._stop.clear()
        retry_thread = threading.Thread(target=self._run_retries, name=f"sqs-retries-{self.name}", daemon=True)
        retry_thread.start()
        self._threads.append(retry_thread)
        for index in range(max(1, self.config.maximum_concurrency)):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{self.name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Stop taking new batches (returns at once; :meth:`stop` waits)."""
        self._stop.set()

    def stop(self, timeout: float = 10) -> None:
        """Stop polling; batches being processed finish first, and messages left for retry turn visible."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        workers = [t for t in self._threads if not t.name.startswith("sqs-retries-")]
        for thread in workers:
            thread.join(max(0.1, deadline - time.monotonic()))
        with self._retry_cond:
            self._retry_cond.notify_all()
        for thread in self._threads:
            if thread not in workers:
                thread.join(max(0.1, deadline - time.monotonic()))
        self._threads = []

    def __enter__(self) -> SqsPoller:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def busy(self) -> bool:
        with self._groups_lock:
            return self._busy > 0

    # -- the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._receive()
            except Exception as exc:
                if self._stop.is_set():
                    return
                self.stats.last_error = f"receive: {type(exc).__name__}: {exc}"
                log.warning("%s: ReceiveMessage failed: %s", self.name, exc)
                self._stop.wait(1)
                continue
            if not batch:
                continue
            try:
                self._process(batch)
            finally:
                self._release_groups(batch)

    def _receive(self) -> list[dict[str, Any]]:
        # One ReceiveMessage at a time per queue: the groups a batch takes are recorded before the next
        # receive, so two batches can never hold the same FIFO group.
        with self._receive_lock:
            if self._stop.is_set():
                return []
            # Long polling while idle. While batches of ours are in flight (or retries pending), a long
            # poll would miss the groups they free (moto decides which groups are blocked when the call
            # starts), so poll briefly instead.
            with self._groups_lock:
                active = self._busy > 0 or bool(self._retries)
            answer = self._sqs.receive_message(
                QueueUrl=self.config.queue_url,
                MaxNumberOfMessages=min(10, max(1, self.config.batch_size)),
                WaitTimeSeconds=0 if active else self.config.wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages") or []
            if not messages:
                if active:
                    self._stop.wait(0.05)
                return []
            if not self.config.fifo:
                with self._groups_lock:
                    self._busy += 1
                return messages
            accepted, conflicts, refused_groups = [], [], set()
            with self._groups_lock:
                for message in messages:
                    group = (message.get("Attributes") or {}).get("MessageGroupId", "")
                    if group in refused_groups or self._groups_in_flight.get(group):
                        refused_groups.add(group)
                        conflicts.append(message)
                    else:
                        accepted.append(message)
                for message in accepted:
                    group = message["Attributes"].get("MessageGroupId", "")
                    self._groups_in_flight[group] = self._groups_in_flight.get(group, 0) + 1
                if accepted:
                    self._busy += 1
            for message in conflicts:
                self.stats.add(fifo_conflicts=1)
                self._change_visibility(message, 0)
            return accepted

    def _release_groups(self, batch: list[dict[str, Any]]) -> None:
        with self._groups_lock:
            self._busy -= 1
            if not self.config.fifo:
                return
            for message in batch:
                group = message["Attributes"].get("MessageGroupId", "")
                left = self._groups_in_flight.get(group, 0) - 1
                if left > 0:
                    self._groups_in_flight[group] = left
                else:
                    self._groups_in_flight.pop(group, None)

    def _process(self, batch: list[dict[str, Any]]) -> None:
        event = {
            "Records": [lambda_sqs_record(m, queue_arn=self.config.queue_arn, region=self.config.region) for m in batch]
        }
        ids = [m["MessageId"] for m in batch]
        self.stats.add(batches=1, received=len(batch))
        try:
            result = self.handler(event, self.context_factory())
        except Exception as exc:
            self.stats.add(handler_errors=1)
            self.stats.last_error = f"handler: {type(exc).__name__}: {exc}"
            log.warning(
                "%s: the function raised %s: %s; the batch of %d stays", self.name, type(exc).__name__, exc, len(batch)
            )
            self._leave(batch)
            return
        failed = failed_message_ids(result, ids) if self.config.report_batch_item_failures else []
        if failed is None:
            self.stats.last_error = "handler: malformed batchItemFailures; the whole batch stays"
            log.warning("%s: %s", self.name, self.stats.last_error)
            self._leave(batch)
            return
        done = [m for m in batch if m["MessageId"] not in failed]
        left = [m for m in batch if m["MessageId"] in failed]
        self._delete(done)
        self._leave(left)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        answer = self._sqs.delete_message_batch(
            QueueUrl=self.config.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        self.stats.add(deleted=len(answer.get("Successful") or []))
        for failure in answer.get("Failed") or []:
            log.warning("%s: DeleteMessage failed: %s", self.name, failure)

    def _leave(self, messages: list[dict[str, Any]]) -> None:
        """Leave messages for a retry: they stay in flight, then become visible together, in order.

        They are not given a short visibility timeout one by one: moto releases a FIFO group when a
        message of it turns visible by timeout, which can hand out a later message of the group
        before an earlier one. Visibility 0, set in order once the delay has passed, releases the
        group in one go, and the queue then delivers the group from its oldest message.
        """
        if not messages:
            return
        self.stats.add(failed=len(messages))
        due = time.monotonic() + self.config.retry_delay_seconds
        with self._retry_cond:
            self._retries.append((due, list(messages)))
            self._retry_cond.notify()

    def _run_retries(self) -> None:
        while True:
            with self._retry_cond:
                while True:
                    now = time.monotonic()
                    ready = [batch for due, batch in self._retries if due <= now or self._stop.is_set()]
                    if ready:
                        self._retries = [(due, b) for due, b in self._retries if not any(b is r for r in ready)]
                        break
                    if self._stop.is_set():
                        return
                    next_due = min((due for due, _ in self._retries), default=now + 0.5)
                    self._retry_cond.wait(max(0.01, min(0.5, next_due - now)))
            for batch in ready:
                for message in batch:
                    self._change_visibility(message, 0)

    def _change_visibility(self, message: dict[str, Any], seconds: int) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.config.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=seconds
            )
        except Exception as exc:  # the message may already be gone (deleted by a duplicate, redriven)
            log.debug("%s: ChangeMessageVisibility failed: %s", self.name, exc)


def wait_until_drained(sqs: Any, queue_urls: list[str], pollers: list[SqsPoller], timeout: float = 30) -> bool:
    """True once every queue is empty (nothing visible, nothing in flight) and no poller is busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        empty = True
        for url in queue_urls:
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if int(attrs["ApproximateNumberOfMessages"]) or int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                empty = False
                break
        if empty and not any(p.busy for p in pollers):
            return True
        time.sleep(0.1)
    return False


@dataclass
class _QueuedMessage:
    message_id: str
    body: str
    group_id: str
    deduplication_id: str
    sent_ms: int
    receive_count: int = 0
    first_receive_ms: int = 0
    receipt_handle: str = ""

    def entry(self) -> dict[str, Any]:
        """The message as ReceiveMessage lists it (what :func:`lambda_sqs_record` takes)."""
        return {
            "MessageId": self.message_id,
            "ReceiptHandle": self.receipt_handle,
            "Body": self.body,
            "Attributes": {
                "ApproximateReceiveCount": str(self.receive_count),
                "SentTimestamp": str(self.sent_ms),
                "ApproximateFirstReceiveTimestamp": str(self.first_receive_ms),
                "SenderId": LOCAL_SENDER_ID,
                "MessageGroupId": self.group_id,
                "MessageDeduplicationId": self.deduplication_id,
            },
        }


LOCAL_SENDER_ID = "AIDALOCALSENDER"


class InMemorySqsSource:
    """A FIFO queue in this process's memory and its Lambda event source, for load runs.

    It is the queue the function's sender writes to (``send``/``delay``, the layer's ``SignalQueue``)
    and the event source mapping that reads it: ``maximum_concurrency`` batches of up to
    ``batch_size`` messages in flight, one batch per message group at a time, the SQS event built
    as :class:`SqsPoller` builds it, ``ReportBatchItemFailures`` honoured. A failed message keeps its
    group until its delay (``delay()``'s, else ``retry_delay_seconds``) has passed, then comes back
    first; after ``max_receive_count`` receives it goes to ``dead_letters``. Deduplication is per
    (group, deduplication ID), as the template's queues (``perMessageGroupId``) have it.

    What it leaves out is moto's CPU per call, which is nothing like SQS's: the load test uses it to
    measure the bundle, not the emulator.
    """

    def __init__(
        self,
        config: SqsSourceConfig,
        handler: Handler,
        *,
        context_factory: Callable[[], Any] | None = None,
        max_receive_count: int = 5,
    ) -> None:
        self.config = config
        self.handler = handler
        self.context_factory = context_factory or (lambda: None)
        self.max_receive_count = max_receive_count
        self.stats = PollerStats()
        self.sent = 0
        self.duplicates = 0
        self.dead_letters: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._ready: list[_QueuedMessage] = []
        self._waiting: list[tuple[float, list[_QueuedMessage]]] = []  # failed, due again at a time
        self._groups_held: set[str] = set()
        self._by_handle: dict[str, _QueuedMessage] = {}
        self._delays: dict[str, int] = {}
        self._seen: set[tuple[str, str]] = set()
        self._busy = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def name(self) -> str:
        return self.config.name or self.config.queue_url.rsplit("/", 1)[-1]

    # -- the queue (the layer's SignalQueue)

    def send(self, message: Any) -> str:
        """``SendMessage`` of a ``QueueMessage`` (body, group_id, deduplication_id); returns its ID."""
        key = (message.group_id, message.deduplication_id)
        with self._cond:
            message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.config.queue_url}#{key}"))
            if key in self._seen:
                self.duplicates += 1
                return message_id
            self._seen.add(key)
            self.sent += 1
            self._ready.append(
                _QueuedMessage(message_id, message.body, message.group_id, message.deduplication_id, _now_ms())
            )
            self._cond.notify()
        return message_id

    def delay(self, receipt_handles: Mapping[str, int]) -> None:
        """``ChangeMessageVisibility`` of failed messages: they come back after these seconds."""
        with self._cond:
            self._delays.update({handle: max(0, int(seconds)) for handle, seconds in receipt_handles.items()})

    # -- the event source mapping

    def start(self) -> None:
        self._stop.clear()
        for index in range(max(1, self.config.maximum_concurrency)):
            thread = threading.Thread(target=self._run, name=f"memory-sqs-{self.name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 10) -> None:
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._threads = []

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy > 0

    def depth(self) -> int:
        """Messages not yet deleted or dead-lettered (visible, in flight or waiting for a retry)."""
        with self._cond:
            waiting = sum(len(batch) for _, batch in self._waiting)
            return len(self._ready) + waiting + len(self._by_handle)

    def as_dict(self) -> dict[str, Any]:
        with self._cond:
            counts = {"sent": self.sent, "duplicates": self.duplicates, "dead_lettered": len(self.dead_letters)}
        return {**self.stats.as_dict(), **counts, "depth": self.depth()}

    def wait_until_drained(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.depth():
                return True
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self._process(batch)

    def _take(self) -> list[_QueuedMessage] | None:
        with self._cond:
            while True:
                if self._stop.is_set():
                    return None
                self._release_due()
                batch = self._batch()
                if batch:
                    self._busy += 1
                    return batch
                next_due = min((due for due, _ in self._waiting), default=None)
                timeout = 0.5 if next_due is None else max(0.001, next_due - time.monotonic())
                self._cond.wait(min(0.5, timeout))

    def _release_due(self) -> None:
        now = time.monotonic()
        due = [batch for when, batch in self._waiting if when <= now]
        if not due:
            return
        self._waiting = [(when, batch) for when, batch in self._waiting if when > now]
        for batch in due:  # back at the head of the queue, oldest first, their groups free again
            self._ready[:0] = batch
            self._groups_held.difference_update(message.group_id for message in batch)

    def _batch(self) -> list[_QueuedMessage]:
        """The next batch: oldest first, only groups no other batch holds (a FIFO group stays in order)."""
        batch: list[_QueuedMessage] = []
        taken_groups: set[str] = set()
        keep: list[_QueuedMessage] = []
        limit = min(10, max(1, self.config.batch_size))
        for message in self._ready:
            group = message.group_id
            takeable = not self.config.fifo or group in taken_groups or group not in self._groups_held
            if len(batch) < limit and takeable:
                batch.append(message)
                taken_groups.add(group)
            else:
                keep.append(message)
        if not batch:
            return []
        self._ready = keep
        if self.config.fifo:
            self._groups_held.update(taken_groups)
        now = _now_ms()
        for message in batch:
            message.receive_count += 1
            message.first_receive_ms = message.first_receive_ms or now
            message.receipt_handle = f"{message.message_id}#{message.receive_count}"
            self._by_handle[message.receipt_handle] = message
        return batch

    def _process(self, batch: list[_QueuedMessage]) -> None:
        arn, region = self.config.queue_arn, self.config.region
        event = {"Records": [lambda_sqs_record(m.entry(), queue_arn=arn, region=region) for m in batch]}
        ids = [message.message_id for message in batch]
        self.stats.add(batches=1, received=len(batch))
        try:
            result = self.handler(event, self.context_factory())
            failed = failed_message_ids(result, ids) if self.config.report_batch_item_failures else []
            if failed is None:
                self.stats.last_error = "handler: malformed batchItemFailures; the whole batch stays"
        except Exception as exc:
            self.stats.add(handler_errors=1)
            self.stats.last_error = f"handler: {type(exc).__name__}: {exc}"
            log.warning("%s: the function raised %s: %s", self.name, type(exc).__name__, exc)
            failed = None
        left = batch if failed is None else [message for message in batch if message.message_id in failed]
        with self._cond:
            for message in batch:
                self._by_handle.pop(message.receipt_handle, None)
            done = [message for message in batch if message not in left]
            retry = []
            for message in left:
                if message.receive_count >= self.max_receive_count:
                    self.dead_letters.append({"message_id": message.message_id, "body": message.body})
                else:
                    retry.append(message)
            # A group with a message to retry stays held until that message is visible again.
            self._groups_held.difference_update({m.group_id for m in batch} - {m.group_id for m in retry})
            if retry:
                seconds = max(self._delays.pop(m.receipt_handle, self.config.retry_delay_seconds) for m in retry)
                self._waiting.append((time.monotonic() + seconds, retry))
            for message in left:
                self._delays.pop(message.receipt_handle, None)
            self.stats.add(deleted=len(done), failed=len(left))
            self._busy -= 1
            self._cond.notify_all()


def _now_ms() -> int:
    return int(time.time() * 1000)

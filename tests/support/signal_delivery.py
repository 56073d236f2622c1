"""The asynchronous signal path on real queues, for the no-loss, fault and dead-letter replay tests.

Signals are accepted through send_signals' direct invocation (``mode: async``) onto the template's
FIFO queue; the local SQS poller feeds them to the handler the way Lambda's event source mapping
does (batches of up to 10, partial batch failures, failed messages visible again, redrive after
maxReceiveCount); the DCS simulator's call log says what the DCS received. SQS and DynamoDB run as
moto servers in processes of their own (moto's CPU would otherwise compete with the worker for the
GIL). The sender and worker are the deployed ones, except that the identity memory and the guard's
counters use the in-memory profile store (moto spends 10-25 ms of CPU on each DynamoDB write; the
store's DynamoDB adapter has its own contract test): the idempotency records are Powertools' on the
profiles table.

Works under pytest and from a plain ``python -m`` run alike (no fixtures needed).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aam_dcs.config import get_settings
from aam_dcs.dcs.http import reset_client
from aam_dcs.jobs.replay import NO_REASON
from aam_dcs.observability import logger
from aam_dcs.signals.send import SignalSender, default_sender
from aam_dcs.signals.worker import default_worker
from aam_dcs.store.memory import InMemoryProfileStore
from local.aws import process_environment
from local.poller import SqsPoller, SqsSourceConfig, wait_until_drained
from tests.support.events import FakeLambdaContext
from tests.support.moto_process import MotoProcess

OPTED_OUT_UUID = "11111111111111111111111111111111111171"  # opted out in the simulator's rules
#: Faults after which the DCS has processed the call but the worker could not read the answer.
UNREADABLE = frozenset({"malformed", "hang"})


class Crash(BaseException):
    """The Lambda process dies: nothing of the batch is reported, every message comes back."""


class Crashes:
    """Wraps a step of the worker: after the n-th call (``at``, counted from 1) ran, the process dies.

    ``seq_of`` names the signal of a call from the step's arguments; ``crashed`` lists them.
    """

    def __init__(self, step: Callable[..., Any], at: Collection[int], seq_of: Callable[..., int]) -> None:
        self.step = step
        self.at = set(at)
        self.seq_of = seq_of
        self.calls = 0
        self.crashed: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        result = self.step(*args)
        with self._lock:
            self.calls += 1
            crash = self.calls in self.at
            if crash:
                self.crashed.append(self.seq_of(*args))
        if crash:
            raise Crash
        return result


def seq_of_call(call: Any, *_: Any) -> int:
    """The ``c_seq`` signal of a prepared call (the first argument of ``deliver`` and ``learn``)."""
    return int(call.request.signals["c_seq"])


def crash_after_delivery(sender: SignalSender, at: Collection[int]) -> Crashes:
    """Die after the delivery was recorded (in ``learn``), before the batch is acknowledged."""
    crashes = Crashes(sender.learn, at, seq_of_call)
    sender.learn = crashes  # type: ignore[method-assign]
    return crashes


def crash_mid_call(sender: SignalSender, at: Collection[int]) -> Crashes:
    """Die once the DCS has answered, before the delivery is recorded (its record stays in progress)."""
    crashes = Crashes(sender.deliver, at, seq_of_call)
    sender.deliver = crashes  # type: ignore[method-assign]
    return crashes


def lambda_runtime(function: Any) -> Any:
    """The handler as Lambda runs it: a dead process is a failed invocation, the batch stays."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        try:
            return function.lambda_handler(event, context)
        except Crash:
            raise RuntimeError("the Lambda process died mid-batch") from None

    return invoke


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Only errors from the functions' logger, the DCS client's and the local pollers'."""
    loggers = [logging.getLogger(name) for name in ("aam_dcs", "local")]
    levels = [logger.log_level, *(each.level for each in loggers)]
    for each in (logger, *loggers):
        each.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(levels[0])
        for each, level in zip(loggers, levels[1:], strict=True):
            each.setLevel(level)


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """The process environment changed for a block (None removes a variable); settings and the DCS
    client are re-read on the way in and out."""
    saved = {name: os.environ.get(name) for name in values}
    _apply(values)
    try:
        yield
    finally:
        _apply(saved)


def _apply(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()
    reset_client()


@contextmanager
def moto_servers() -> Iterator[dict[str, str]]:
    """SQS and DynamoDB on moto servers in processes of their own, reached by service endpoints
    (set in the environment for the block); yields the endpoints."""
    with MotoProcess(sqs_under_load=True) as sqs, MotoProcess() as dynamodb:
        endpoints = {"sqs": sqs.endpoint, "dynamodb": dynamodb.endpoint}
        aws_env = {
            **process_environment(""),
            "AWS_ENDPOINT_URL": None,
            "AWS_ENDPOINT_URL_SQS": sqs.endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint,
        }
        with environment(aws_env):
            yield endpoints


@dataclass(frozen=True)
class Workload:
    """``visitors`` visitors (the last one opted out at the DCS), ``signals_per_visitor`` signals each."""

    visitors: int = 100
    signals_per_visitor: int = 10

    @property
    def signals(self) -> int:
        return self.visitors * self.signals_per_visitor

    def identities(self) -> list[dict[str, Any]]:
        """ECID visitors in two regions, and one visitor the DCS knows as opted out."""
        visitors: list[dict[str, Any]] = [
            {"mid": f"{4512783304617290021 + n:019d}{n * 7919:019d}", "region_id": 9 if n % 2 else 6}
            for n in range(self.visitors - 1)
        ]
        return [*visitors, {"uuid": OPTED_OUT_UUID}]


def accept_all(function: Any, workload: Workload) -> dict[int, str]:
    """Send every signal with ``mode: async`` through the function's direct-invocation path, each
    visitor's signals in order (8 visitors at a time); returns seq -> the visitor of each queued one.
    Odd signals carry an ``event_id``; the others dedup on a content hash and key on the message ID.

    Once the worker has learned that the opted-out visitor opted out, that visitor's next signals
    are answered ``skipped_opted_out`` and not queued, as in production: they are not accepted."""
    visitors = workload.identities()

    def accept(index: int) -> dict[int, str]:
        visitor, accepted = visitors[index], {}
        who = visitor.get("mid") or visitor["uuid"]
        for round_ in range(workload.signals_per_visitor):
            seq = round_ * workload.visitors + index
            body: dict[str, Any] = {**visitor, "signals": {"c_seq": str(seq), "c_text": "a b&c=d%+ü"}, "mode": "async"}
            if seq % 2:
                body["event_id"] = f"ev-{seq}"
            answer = function.send(body)
            if answer["status"] == "queued":
                accepted[seq] = who
            else:
                assert (answer["status"], who) == ("skipped_opted_out", OPTED_OUT_UUID), answer
        return accepted

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {seq: who for part in pool.map(accept, range(len(visitors))) for seq, who in part.items()}


def wire(function: Any) -> SignalSender:
    """The handler's sender and worker as deployed, but with the in-memory profile store."""
    deployed = default_sender()
    store = InMemoryProfileStore()
    sender = dataclasses.replace(deployed, store=store, resolver=dataclasses.replace(deployed.resolver, store=store))
    worker = default_worker(sender)
    assert type(worker.idempotency).__name__ == "PowertoolsIdempotency"
    assert worker.dead_letters is not None
    function.sender = lambda: sender
    function.worker = lambda: worker
    return sender


def signal_poller(aws: Any, function: Any, *, retry_delay_seconds: int = 0, remaining_ms: int = 30_000) -> SqsPoller:
    """The queue's event source: batches of 10, 4 at a time, the handler run as Lambda runs it.

    ``retry_delay_seconds`` stands in for the worker's backoff (see ``local.poller``);
    ``remaining_ms`` is each invocation's remaining time (it bounds an in-progress idempotency record).
    """
    config = SqsSourceConfig(
        queue_url=aws.queue_url,
        queue_arn=aws.queue_arn,
        batch_size=10,
        maximum_concurrency=4,
        fifo=True,
        wait_seconds=1,
        retry_delay_seconds=retry_delay_seconds,
    )
    return SqsPoller(
        config,
        lambda_runtime(function),
        endpoint=aws.endpoint,
        context_factory=lambda: FakeLambdaContext(remaining_ms=remaining_ms),
    )


def wait_for(poller: SqsPoller, messages: int, timeout: float) -> bool:
    """Until the poller has acknowledged every message (a dead-lettered one is acknowledged too).

    Watching the poller's counters instead of the queue's attributes spares moto, which scans the
    whole queue to count its messages.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poller.stats.as_dict()["deleted"] >= messages:
            return True
        time.sleep(0.2)
    return False


def settle(poller: SqsPoller, aws: Any, messages: int, timeout: float) -> bool:
    """Until the queue is empty and the poller idle, with every message acknowledged or not (SQS
    moved some to the DLQ); False when that takes longer than ``timeout``. The queue's attributes
    (moto scans the whole queue for them) are read once every message is acknowledged, and every
    few seconds before that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wait_for(poller, messages, min(5.0, deadline - time.monotonic())):
            return wait_until_drained(aws.sqs, [aws.queue_url], [poller], timeout=10)
        if wait_until_drained(aws.sqs, [aws.queue_url], [poller], timeout=0.2):
            return True
    return False


def dead_letters(aws: Any, *, keep: bool = False) -> dict[int, str]:
    """seq -> reason of every message in the DLQ (``max_receives`` when SQS moved it without one).

    The messages are deleted as they are read, unless ``keep``: then they are made visible again.
    """
    found: dict[int, str] = {}
    held: list[str] = []
    while True:
        answer = aws.sqs.receive_message(
            QueueUrl=aws.dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
        )
        messages = [m for m in answer.get("Messages", []) if _seq(m) not in found]
        if not messages:
            break
        for message in messages:
            attributes = message.get("MessageAttributes") or {}
            found[_seq(message)] = attributes.get("reason", {}).get("StringValue", NO_REASON)
            if keep:
                held.append(message["ReceiptHandle"])
            else:
                aws.sqs.delete_message(QueueUrl=aws.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    for handle in held:
        aws.sqs.change_message_visibility(QueueUrl=aws.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return found


def _seq(message: Mapping[str, Any]) -> int:
    return int(json.loads(message["Body"])["request"]["signals"]["c_seq"])


def processed_calls(log: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """seq -> the ``/event`` calls of the simulator's log that it processed, in order: answered 200
    (readable or not), or processed and then held past the client's timeout (``hang``)."""
    calls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for call in log:
        answered = call["outcome"] == "answered" and call["status"] == 200
        if answered or call["outcome"] == "hang":
            seq = next(int(v) for k, v in call["params"] if k == "c_seq")
            calls[seq].append(call)
    return calls


@dataclass
class Tally:
    """What became of each accepted signal, from the simulator's log and the DLQ."""

    accepted: int = 0
    received_once: int = 0
    duplicated: int = 0  # signals the DCS processed more than once
    extra_calls: int = 0  # processed calls beyond each signal's first
    dead_lettered: Counter[str] = field(default_factory=Counter)  # reason -> signals
    lost: list[int] = field(default_factory=list)
    #: signals processed again after an answer the worker read (``crashed``: a signal each time its
    #: worker died after the DCS answered, before recording it): duplicates at-least-once does not explain
    unexplained: list[int] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        accepted: Collection[int],
        calls: Mapping[int, list[dict[str, Any]]],
        dlq: Mapping[int, str],
        crashed: Collection[int] = (),
    ) -> Tally:
        tally, crashes = cls(accepted=len(accepted)), Counter(crashed)
        for seq in accepted:
            received = calls.get(seq, [])
            tally._count(seq, received, dlq.get(seq))
            if not _explained(received, crashes=crashes[seq]):
                tally.unexplained.append(seq)
        return tally

    def _count(self, seq: int, received: list[dict[str, Any]], reason: str | None) -> None:
        self.extra_calls += max(0, len(received) - 1)
        if reason is not None:
            self.dead_lettered[reason] += 1
        elif not received:
            self.lost.append(seq)
        elif len(received) == 1:
            self.received_once += 1
        else:
            self.duplicated += 1

    @property
    def redriven(self) -> int:
        """Dead letters without a reason (SQS gave up after maxReceiveCount)."""
        return self.dead_lettered[NO_REASON]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "received_once": self.received_once,
            "duplicated": self.duplicated,
            "extra_calls": self.extra_calls,
            "dead_lettered": dict(self.dead_lettered),
            "lost": len(self.lost),
            "unexplained_duplicates": self.unexplained,
        }


def _explained(received: list[dict[str, Any]], *, crashes: int) -> bool:
    """A signal is processed again only after an answer the worker never read: a garbled or withheld
    one, or one whose worker died before recording it (``crashes`` times)."""
    readable = [call for call in received[:-1] if call["fault"] not in UNREADABLE]
    return len(readable) <= crashes

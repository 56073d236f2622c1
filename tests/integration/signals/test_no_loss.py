"""No accepted signal is lost: 1,000 queued signals for 100 visitors, 20 % transient DCS faults, and a
worker that dies once in the middle of a batch.

The signal queue and its DLQ are the template's, and the idempotency records are Powertools' on the
profiles table, on moto servers in processes of their own (moto's CPU would otherwise compete with
the worker for the GIL). The identity memory and the guard's counters use the in-memory profile
store: moto spends 10-25 ms of CPU on each DynamoDB write, and the store's DynamoDB adapter has its
own contract test. The local SQS poller feeds the handler the way Lambda's event source mapping does
(batches of up to 10, partial batch failures, failed messages visible again, redrive after
maxReceiveCount). The simulator's call log says what the DCS received.

What is guaranteed, and asserted:

- every accepted signal reached the DCS, or sits in the DLQ with a reason (none is lost);
- a signal reached the DCS more than once only after an answer that could not be read (a malformed
  body: the DCS processed the call, the worker could not tell, the message was retried and counted
  as a possible duplicate); a connection reset or a 5xx never produces a duplicate here, because
  the simulator drops those calls before processing them;
- the crash comes after the DCS answered and the delivery was recorded, before the batch was
  acknowledged: the whole batch is redelivered, every recorded delivery is answered from the
  idempotency records, so the crash causes no second call;
- no visitor ever had two calls in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from aam_dcs.config import get_settings
from aam_dcs.dcs.http import get_client, reset_client
from aam_dcs.ids.resolver import IdentityResolver
from aam_dcs.jobs.signal_queue import SqsSignalQueue
from aam_dcs.observability import logger
from aam_dcs.signals.send import SignalSender
from aam_dcs.signals.worker import default_worker
from aam_dcs.store.memory import InMemoryProfileStore
from local.aws import process_environment
from local.dcs_simulator import DcsSimulator
from local.poller import SqsPoller, SqsSourceConfig, wait_until_drained
from tests.integration.signals.conftest import Aws, apply_env, bundle_env, create_resources, load_function
from tests.support.events import FakeLambdaContext
from tests.support.moto_process import MotoProcess

pytestmark = pytest.mark.integration

VISITORS = 100
SIGNALS_PER_VISITOR = 10
OPTED_OUT_UUID = "11111111111111111111111111111111111171"  # opted out in the simulator's rules
CRASH_AT_DELIVERY = 300
FAULTS = {"seed": 2024, "error_rate": 0.07, "reset_rate": 0.07, "malformed_rate": 0.06}


class Crash(BaseException):
    """The Lambda process dies: nothing of the batch is reported, every message comes back."""


def visitor_ids() -> list[dict[str, Any]]:
    """99 ECID visitors in two regions, and one visitor the DCS knows as opted out."""
    visitors: list[dict[str, Any]] = [
        {"mid": f"{4512783304617290021 + n:019d}{n * 7919:019d}", "region_id": 9 if n % 2 else 6}
        for n in range(VISITORS - 1)
    ]
    return [*visitors, {"uuid": OPTED_OUT_UUID}]


def accept_all(function: Any) -> dict[int, str]:
    """Send every signal with ``mode: async`` through the function's direct-invocation path, each
    visitor's signals in order (8 visitors at a time); returns seq -> the visitor it belongs to."""
    visitors = visitor_ids()

    def accept(index: int) -> dict[int, str]:
        visitor, accepted = visitors[index], {}
        for round_ in range(SIGNALS_PER_VISITOR):
            seq = round_ * VISITORS + index
            body: dict[str, Any] = {**visitor, "signals": {"c_seq": str(seq), "c_text": "a b&c=d%+ü"}, "mode": "async"}
            if seq % 2:
                body["event_id"] = f"ev-{seq}"  # the other half dedups on a content hash
            assert function.send(body)["status"] == "queued"
            accepted[seq] = visitor.get("mid") or visitor["uuid"]
        return accepted

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {seq: who for part in pool.map(accept, range(len(visitors))) for seq, who in part.items()}


class CrashOnce:
    """Wraps the sender's ``learn`` (run after the delivery is recorded): the N-th call kills the process."""

    def __init__(self, sender: Any, at: int) -> None:
        self.learn = sender.learn
        self.at = at
        self.calls = 0
        self.crashed_seq: int | None = None
        self.lock = threading.Lock()

    def __call__(self, call: Any, delivery: Any) -> Any:
        with self.lock:
            self.calls += 1
            crash = self.calls == self.at
        if crash:
            self.crashed_seq = int(call.request.signals["c_seq"])
            raise Crash
        return self.learn(call, delivery)


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
    level = logger.log_level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


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


def dead_letters(aws: Any) -> dict[int, str]:
    """seq -> reason of every message in the DLQ (``<redrive>`` when SQS moved it without one)."""
    found: dict[int, str] = {}
    while True:
        answer = aws.sqs.receive_message(
            QueueUrl=aws.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        messages = answer.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            seq = int(json.loads(message["Body"])["request"]["signals"]["c_seq"])
            attributes = message.get("MessageAttributes") or {}
            found[seq] = attributes.get("reason", {}).get("StringValue", "<redrive>")
            aws.sqs.delete_message(QueueUrl=aws.dlq_url, ReceiptHandle=message["ReceiptHandle"])


def processed_calls(sim: Any) -> dict[int, list[dict[str, Any]]]:
    """seq -> the calls the simulator processed (answered 200, readable or not), in order."""
    calls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for call in sim.calls("/event"):
        if call["outcome"] == "answered" and call["status"] == 200:
            seq = next(int(v) for k, v in call["params"] if k == "c_seq")
            calls[seq].append(call)
    return calls


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """SQS and DynamoDB each on a moto server in a process of its own, reached by service endpoints."""
    with MotoProcess(sqs_under_load=True) as sqs, MotoProcess() as dynamodb:
        endpoints = {"AWS_ENDPOINT_URL_SQS": sqs.endpoint, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint}
        apply_env(monkeypatch, {**process_environment(""), "AWS_ENDPOINT_URL": None, **endpoints})
        yield create_resources(sqs_endpoint=sqs.endpoint, dynamodb_endpoint=dynamodb.endpoint)


@pytest.fixture
def function(monkeypatch: pytest.MonkeyPatch, sim: DcsSimulator, aws: Aws) -> Iterator[Any]:
    apply_env(monkeypatch, dict(bundle_env(sim, aws)))
    yield load_function()
    reset_client()
    get_settings.cache_clear()


def wire(function: Any, monkeypatch: pytest.MonkeyPatch, aws: Any) -> SignalSender:
    """The handler's use case and worker as deployed, but with the in-memory profile store."""
    settings = get_settings()
    store = InMemoryProfileStore()
    sender = SignalSender(
        settings=settings,
        resolver=IdentityResolver(settings=settings, store=store),
        gateway=get_client(),
        store=store,
        queue=SqsSignalQueue(aws.queue_url),
    )
    worker = default_worker(sender)
    assert type(worker.idempotency).__name__ == "PowertoolsIdempotency"
    assert worker.dead_letters is not None
    monkeypatch.setattr(function, "sender", lambda: sender)
    monkeypatch.setattr(function, "worker", lambda: worker)
    return sender


def test_no_accepted_signal_is_lost(function, sim, aws, monkeypatch):
    sender = wire(function, monkeypatch, aws)
    crash = CrashOnce(sender, CRASH_AT_DELIVERY)
    monkeypatch.setattr(sender, "learn", crash)
    sim.set_faults(**FAULTS)
    with quiet_logs():
        config = SqsSourceConfig(
            queue_url=aws.queue_url,
            queue_arn=aws.queue_arn,
            batch_size=10,
            maximum_concurrency=4,
            fifo=True,
            wait_seconds=1,
            retry_delay_seconds=0,
        )
        with SqsPoller(
            config, lambda_runtime(function), endpoint=aws.endpoint, context_factory=FakeLambdaContext
        ) as poller:
            # Signals are accepted while the worker runs, as in production (and moto's FIFO queue,
            # which scans every message on each call, stays small).
            accepted = accept_all(function)
            # Generous limits: about 35 s on an idle 2-CPU machine, more when it is busy.
            drained = wait_for(poller, len(accepted), timeout=120) and wait_until_drained(
                aws.sqs, [aws.queue_url], [poller], timeout=10
            )
        left = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])["Attributes"]
        stats, calls, dlq = sim.stats(), processed_calls(sim), dead_letters(aws)

    assert len(accepted) == VISITORS * SIGNALS_PER_VISITOR
    assert drained, json.dumps([poller.stats.as_dict(), left])
    assert crash.crashed_seq is not None, "the worker never crashed"
    assert poller.stats.handler_errors >= 1

    figures = Counter()
    for seq in accepted:
        received = calls.get(seq, [])
        clean = [c for c in received if c["fault"] is None]
        if seq in dlq:
            figures[f"dlq:{dlq[seq]}"] += 1
            assert dlq[seq] != "<redrive>", f"signal {seq} was redriven without a reason"
        elif len(clean) == 1:
            figures["received_once" if len(received) == 1 else "received_once_after_malformed"] += 1
        else:
            figures["lost"] += 1
        # A second processed call only ever follows an answer the worker could not read.
        assert all(c["fault"] == "malformed" for c in received[:-1]), (seq, [c["fault"] for c in received])
        figures["duplicate_calls"] += max(0, len(received) - 1)

    opted_out = [seq for seq, visitor in accepted.items() if visitor == OPTED_OUT_UUID]
    assert {seq: dlq.get(seq) for seq in opted_out} == dict.fromkeys(opted_out, "opted_out")
    assert figures["lost"] == 0, figures
    crashed = [c["fault"] for c in calls[crash.crashed_seq]]
    assert crashed.count(None) == 1, f"the crash caused a second call: {crashed}"
    assert figures["received_once"] + figures["received_once_after_malformed"] + len(dlq) == len(accepted)
    assert stats["max_in_flight_per_user"] == 1
    assert stats["concurrent_violations"] == []
    assert stats["calls_with_cookie"] == 0
    faults = stats["faults_applied"]
    assert all(faults.get(kind, 0) > 0 for kind in ("error", "reset", "malformed")), faults
    print(
        "\nno-loss figures:",
        json.dumps(
            {
                "accepted": len(accepted),
                **dict(figures),
                "dlq": len(dlq),
                "faults_applied": faults,
                "dcs_calls": stats["calls_by_path"].get("/event"),
                "batches": poller.stats.batches,
                "handler_errors": poller.stats.handler_errors,
                "crashed_seq": crash.crashed_seq,
            }
        ),
    )

"""The real adapters on moto: the signal queue (SendMessage, visibility), Powertools idempotency on
the profiles table, and the denylist guard's counters."""

from __future__ import annotations

import time

import pytest

from aam_dcs.errors import RateLimited
from aam_dcs.ids.models import ResolvedIdentity
from aam_dcs.jobs.idempotency import DeliveryInProgress, PowertoolsIdempotency
from aam_dcs.jobs.signal_queue import SqsSignalQueue
from aam_dcs.signals.guard import CallGuard
from aam_dcs.signals.messages import QueueMessage
from aam_dcs.store.dynamodb import DynamoDbProfileStore
from tests.support.events import FakeLambdaContext
from tests.support.signals import MID

pytestmark = pytest.mark.integration


class Crash(BaseException):
    """The process dies in the middle of the work."""


def receive(aws, wait=0):
    answer = aws.sqs.receive_message(
        QueueUrl=aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, MessageSystemAttributeNames=["All"]
    )
    return answer.get("Messages", [])


def test_the_queue_sends_one_fifo_message_per_call_and_drops_duplicates(bundle, aws):
    queue = SqsSignalQueue(aws.queue_url)
    for body, dedup in (('{"n":1}', "e-1"), ('{"n":1}', "e-1"), ('{"n":2}', "e-2")):
        assert queue.send(QueueMessage(body=body, group_id=f"mid:{MID}", deduplication_id=dedup))
    messages = receive(aws)
    assert [m["Body"] for m in messages] == ['{"n":1}', '{"n":2}']
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {f"mid:{MID}"}
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == ["e-1", "e-2"]


def test_delay_hands_messages_back_after_the_given_seconds(bundle, aws):
    queue = SqsSignalQueue(aws.queue_url)
    queue.send(QueueMessage(body="a", group_id="g1", deduplication_id="1"))
    queue.send(QueueMessage(body="b", group_id="g2", deduplication_id="2"))
    received = {m["Body"]: m["ReceiptHandle"] for m in receive(aws)}
    queue.delay({received["a"]: 0, received["b"]: 600})
    assert [m["Body"] for m in receive(aws)] == ["a"]


def test_delay_is_best_effort(bundle, aws):
    SqsSignalQueue(aws.queue_url).delay({"not-a-receipt-handle": 5})  # logged, not raised


def test_idempotency_runs_the_work_once_per_key(bundle, aws):
    idempotency = PowertoolsIdempotency(aws.table)
    idempotency.register(FakeLambdaContext())
    calls = []

    def work():
        calls.append(1)
        return {"status": "sent", "tid": "t-1"}

    assert idempotency.run("mid:x#e-1", work) == {"status": "sent", "tid": "t-1"}
    assert idempotency.run("mid:x#e-1", work) == {"status": "sent", "tid": "t-1"}
    assert idempotency.run("mid:x#e-2", work) == {"status": "sent", "tid": "t-1"}
    assert len(calls) == 2
    items = aws.dynamodb.scan(TableName=aws.table)["Items"]
    assert {item["pk"]["S"] for item in items} == {"idempotency#send_signals"}
    assert all(item["sk"]["S"].startswith("send_signals#") for item in items)
    assert all(int(item["expires_at"]["N"]) > time.time() + 23 * 3600 for item in items)
    assert not any("mid:x" in item["sk"]["S"] for item in items)


def test_a_failed_run_leaves_no_record_so_the_retry_runs(bundle, aws):
    idempotency = PowertoolsIdempotency(aws.table)
    idempotency.register(FakeLambdaContext())

    def fail():
        raise RuntimeError("DCS unavailable")

    with pytest.raises(RuntimeError):
        idempotency.run("k", fail)
    assert idempotency.run("k", lambda: {"status": "sent"}) == {"status": "sent"}


def test_a_crashed_run_blocks_retries_until_the_lambda_time_is_over(bundle, aws):
    idempotency = PowertoolsIdempotency(aws.table)
    idempotency.register(FakeLambdaContext(remaining_ms=1500))

    def crash():
        raise Crash

    with pytest.raises(Crash):
        idempotency.run("k", crash)
    with pytest.raises(DeliveryInProgress):
        idempotency.run("k", lambda: {"status": "sent"})
    time.sleep(1.6)
    # The crashed run's time is over: the next delivery runs the work again (a possible duplicate).
    assert idempotency.run("k", lambda: {"status": "sent", "again": True}) == {"status": "sent", "again": True}


def test_the_guard_counts_on_the_table(bundle, aws):
    store = DynamoDbProfileStore(aws.table)
    guard = CallGuard(store, calls_per_minute=2, clock=lambda: 1_800_000_000.0)
    visitor = ResolvedIdentity(mid=MID, region_id=9, region_host="usw2.demdex.net", region_source="request")
    guard.admit(visitor)
    guard.admit(visitor)
    with pytest.raises(RateLimited) as info:
        guard.admit(visitor)
    assert info.value.retry_after == pytest.approx(60.0)
    item = aws.dynamodb.get_item(TableName=aws.table, Key={"pk": {"S": f"rate#mid#{MID}"}, "sk": {"S": "30000000"}})
    assert item["Item"]["calls"]["N"] == "3"

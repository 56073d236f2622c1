"""The SQS poller against moto, with the template's FIFO signal queue and a stand-in handler.

The handler is injected (any callable), so these tests control success and failure per message and
check what Lambda's event source mapping promises: order within a message group, one batch per
group at a time, concurrency across groups, partial batch failures, retries and the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from local.poller import SqsPoller, SqsSourceConfig, failed_message_ids, lambda_sqs_record


class Recorder:
    """A stand-in handler: records every record it sees; ``decide`` says which message IDs fail."""

    def __init__(self, decide: Callable[[dict[str, Any]], bool] | None = None, delay: float = 0.0) -> None:
        self.decide = decide or (lambda record: False)
        self.delay = delay
        self.lock = threading.Lock()
        self.seen: list[dict[str, Any]] = []  # every record handed over, in handling order
        self.done: list[dict[str, Any]] = []  # records handled successfully
        self.active_groups: dict[str, int] = defaultdict(int)
        self.max_same_group = 0
        self.active_batches = 0
        self.max_batches = 0
        self.batches: list[list[str]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        records = event["Records"]
        groups = {r["attributes"]["MessageGroupId"] for r in records}
        with self.lock:
            self.batches.append([r["body"] for r in records])
            self.active_batches += 1
            self.max_batches = max(self.max_batches, self.active_batches)
            for group in groups:
                self.active_groups[group] += 1
                self.max_same_group = max(self.max_same_group, self.active_groups[group])
        try:
            time.sleep(self.delay)
            failures: list[dict[str, str]] = []
            failed_groups: set[str] = set()
            for record in records:  # in order; after a failure the rest of the group is skipped
                group = record["attributes"]["MessageGroupId"]
                with self.lock:
                    self.seen.append(record)
                if group in failed_groups or self.decide(record):
                    failed_groups.add(group)
                    failures.append({"itemIdentifier": record["messageId"]})
                else:
                    with self.lock:
                        self.done.append(record)
            return {"batchItemFailures": failures}
        finally:
            with self.lock:
                self.active_batches -= 1
                for group in groups:
                    self.active_groups[group] -= 1

    def bodies_by_group(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for record in self.done:
            out[record["attributes"]["MessageGroupId"]].append(json.loads(record["body"])["n"])
        return dict(out)


@pytest.fixture
def queues(template_queues: Any) -> Any:
    """The template's signal queue and its dead-letter queue, fresh (``conftest.MotoQueues``)."""
    return template_queues


def make_poller(res: Any, handler: Any, *, concurrency: int = 3, **overrides: Any) -> SqsPoller:
    queue = res.queues["SignalQueue"]
    config = SqsSourceConfig(
        queue_url=queue.url,
        queue_arn=queue.arn,
        batch_size=10,
        report_batch_item_failures=True,
        maximum_concurrency=concurrency,
        fifo=queue.fifo,
        retry_delay_seconds=1,
        **overrides,
    )
    return SqsPoller(config, handler, endpoint=res.endpoint)


def send(res: Any, messages: list[tuple[str, int]]) -> None:
    """Send (group, n) messages in this order, in batches of 10 as the job planners do."""
    url = res.queues["SignalQueue"].url
    for start in range(0, len(messages), 10):
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps({"group": group, "n": n}),
                "MessageGroupId": group,
                "MessageDeduplicationId": uuid.uuid4().hex,
            }
            for i, (group, n) in enumerate(messages[start : start + 10])
        ]
        answer = res.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not answer.get("Failed")


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the poller")


def queue_counts(res: Any, logical_id: str) -> tuple[int, int]:
    attrs = res.sqs.get_queue_attributes(
        QueueUrl=res.queues[logical_id].url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


GROUPS = ("user-a", "user-b", "user-c")


def test_order_per_group_and_concurrency_across_groups(queues: Any) -> None:
    # 30 messages over 3 groups; each group's 10 sent together, as a job planner's SendMessageBatch does.
    send(queues, [(group, n) for group in GROUPS for n in range(10)])
    handler = Recorder(delay=0.3)
    with make_poller(queues, handler, concurrency=3):
        wait_for(lambda: len(handler.done) == 30)
        wait_for(lambda: queue_counts(queues, "SignalQueue") == (0, 0))
    assert handler.bodies_by_group() == {group: list(range(10)) for group in GROUPS}
    assert handler.max_same_group == 1  # never two batches of one group at once
    assert handler.max_batches >= 2  # different groups ran side by side
    assert len(handler.seen) == 30  # each exactly once


def test_interleaved_groups_keep_their_order(queues: Any) -> None:
    send(queues, [(group, n) for n in range(10) for group in GROUPS])
    handler = Recorder(delay=0.05)
    with make_poller(queues, handler, concurrency=5):
        wait_for(lambda: len(handler.done) == 30)
    assert handler.bodies_by_group() == {group: list(range(10)) for group in GROUPS}
    assert handler.max_same_group == 1


def test_partial_batch_failure_is_redelivered_in_order(queues: Any) -> None:
    send(queues, [(group, n) for group in GROUPS for n in range(5)])
    failed_once: set[str] = set()

    def decide(record: dict[str, Any]) -> bool:
        body = json.loads(record["body"])
        if body["group"] == "user-b" and body["n"] == 2 and record["messageId"] not in failed_once:
            failed_once.add(record["messageId"])
            return True
        return False

    handler = Recorder(decide)
    poller = make_poller(queues, handler)
    with poller:
        wait_for(lambda: len(handler.done) == 15)
        wait_for(lambda: queue_counts(queues, "SignalQueue") == (0, 0))
    assert handler.bodies_by_group() == {group: list(range(5)) for group in GROUPS}
    redelivered = [r for r in handler.seen if json.loads(r["body"]) == {"group": "user-b", "n": 2}]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in redelivered] == ["1", "2"]
    # the failed message and the rest of its group came back; the successes were deleted, not re-sent
    assert sum(1 for r in handler.seen if json.loads(r["body"])["group"] == "user-a") == 5
    assert poller.stats.failed == 3  # user-b 2, 3 and 4 were left once
    assert queue_counts(queues, "SignalDeadLetterQueue") == (0, 0)


def test_handler_exception_leaves_the_whole_batch(queues: Any) -> None:
    send(queues, [("user-a", n) for n in range(4)])
    calls = {"n": 0}
    recorder = Recorder()

    def flaky(event: dict[str, Any], context: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("cold start went wrong")
        return recorder(event, context)

    poller = make_poller(queues, flaky)
    with poller:
        wait_for(lambda: len(recorder.done) == 4)
    assert recorder.bodies_by_group() == {"user-a": [0, 1, 2, 3]}
    assert {r["attributes"]["ApproximateReceiveCount"] for r in recorder.done} == {"2"}
    assert poller.stats.handler_errors == 1


def test_an_unknown_item_identifier_fails_the_whole_batch(queues: Any) -> None:
    send(queues, [("user-a", 0), ("user-a", 1)])
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}])
    recorder = Recorder()

    def handler(event: dict[str, Any], context: Any) -> Any:
        answer = next(answers, None)
        return answer if answer is not None else recorder(event, context)

    with make_poller(queues, handler):
        wait_for(lambda: len(recorder.done) == 2)
    assert {r["attributes"]["ApproximateReceiveCount"] for r in recorder.done} == {"2"}


def test_poison_message_moves_to_the_dead_letter_queue(queues: Any) -> None:
    # maxReceiveCount is 3 here (a template parameter); the poison message fails every time.
    # (Messages behind a poison message in the same batch are retried with it and share its receive
    # count, so they would be redriven too, as on SQS: the poison is the last of its group here.)
    max_receive = queues.queues["SignalQueue"].max_receive_count
    assert max_receive == 3
    send(queues, [("user-a", 0), ("user-a", 1), ("user-b", 0)])
    handler = Recorder(lambda record: json.loads(record["body"]) == {"group": "user-a", "n": 1})
    with make_poller(queues, handler):
        wait_for(lambda: queue_counts(queues, "SignalDeadLetterQueue")[0] == 1, timeout=30)
        send(queues, [("user-a", 2)])  # the group is not blocked once the poison is gone
        wait_for(lambda: len(handler.done) == 3)
    poison = [r for r in handler.seen if json.loads(r["body"]) == {"group": "user-a", "n": 1}]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in poison] == ["1", "2", "3"]
    assert handler.bodies_by_group() == {"user-a": [0, 2], "user-b": [0]}
    dlq = queues.sqs.receive_message(
        QueueUrl=queues.queues["SignalDeadLetterQueue"].url, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [json.loads(m["Body"]) for m in dlq] == [{"group": "user-a", "n": 1}]
    assert dlq[0]["Attributes"]["MessageGroupId"] == "user-a"
    assert queue_counts(queues, "SignalQueue") == (0, 0)


def test_lambda_sqs_record_shape(queues: Any) -> None:
    url = queues.queues["SignalQueue"].url
    queues.sqs.send_message(
        QueueUrl=url,
        MessageBody='{"hello": "world"}',
        MessageGroupId="user-z",
        MessageDeduplicationId="shape-1",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "signal"}},
    )
    message = queues.sqs.receive_message(
        QueueUrl=url, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"][0]
    queue_arn = queues.queues["SignalQueue"].arn
    record = lambda_sqs_record(message, queue_arn=queue_arn, region="us-west-2")
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue_arn
    assert record["md5OfBody"] == hashlib.md5(b'{"hello": "world"}').hexdigest()
    attributes = record["attributes"]
    assert attributes["MessageGroupId"] == "user-z"
    assert attributes["MessageDeduplicationId"] == "shape-1"
    assert attributes["ApproximateReceiveCount"] == "1"
    assert attributes["SequenceNumber"].isdigit()
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(attributes)
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "signal",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    queues.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["b"]),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),
        ({"batchItemFailures": "b"}, None),
        ("not a dict", None),
    ],
)
def test_failed_message_ids(result: Any, expected: list[str] | None) -> None:
    assert failed_message_ids(result, ["a", "b"]) == expected


def test_stop_is_prompt(queues: Any) -> None:
    poller = make_poller(queues, Recorder(), concurrency=5)
    poller.start()
    time.sleep(0.2)
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 3
    assert not poller.busy

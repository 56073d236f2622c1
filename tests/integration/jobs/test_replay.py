"""Dead-letter replay against moto's SQS: what is copied back, in which order, and when a dead letter
is deleted. (``tests/integration/signals/test_dlq_replay.py`` replays through the worker and the DCS
simulator.)"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from aam_dcs.jobs.deadletter import dead_letter_message
from aam_dcs.jobs.replay import DeadLetterReplay, main, stack_outputs
from tests.support.events import sqs_event

pytestmark = pytest.mark.integration

FIFO = {"FifoQueue": "true", "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"}


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs")


@pytest.fixture
def queues(sqs):
    stack = f"s{uuid.uuid4().hex[:8]}"
    source = sqs.create_queue(QueueName=f"{stack}-signals.fifo", Attributes=FIFO)["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"{stack}-signals-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return stack, source, dlq


def dead_letter(sqs, dlq, group, seq, reason="invalid_request"):
    """A message the worker dead-lettered with ``reason``; returns its source message's ID."""
    record = SQSRecord(sqs_event([(group, {"kind": "send_signals", "seq": seq})])["Records"][0])
    sqs.send_message(**dead_letter_message(dlq, record, reason, {"field": "signals", "rule": "test"}))
    return record.message_id


def redriven(sqs, dlq, group, seq):
    """A message SQS moved after maxReceiveCount receives: no reason, its own ID."""
    body = json.dumps({"kind": "send_signals", "seq": seq})
    return sqs.send_message(QueueUrl=dlq, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=f"d{seq}")[
        "MessageId"
    ]


def drain(sqs, url):
    """Every message of a queue, in order, deleted as read."""
    found = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def seqs(messages):
    return [json.loads(message["Body"])["seq"] for message in messages]


def replay(sqs, source, dlq, **options):
    return DeadLetterReplay(sqs, source_url=source, dlq_url=dlq, wait_seconds=0).run(**options)


def test_a_copy_keeps_body_group_and_identity_and_the_dead_letter_goes(sqs, queues):
    _, source, dlq = queues
    original = dead_letter(sqs, dlq, "mid:1", 1)
    report = replay(sqs, source, dlq)
    assert report.to_dict()["counts"] == {"replayed": {"invalid_request": 1}}
    (copy,) = drain(sqs, source)
    assert seqs([copy]) == [1]
    assert copy["Attributes"]["MessageGroupId"] == "mid:1"
    assert {name: value["StringValue"] for name, value in copy["MessageAttributes"].items()} == {
        "source_message_id": original
    }
    assert drain(sqs, dlq) == []


def test_a_message_sqs_moved_stands_for_itself_and_has_no_reason(sqs, queues):
    _, source, dlq = queues
    own_id = redriven(sqs, dlq, "mid:1", 1)
    report = replay(sqs, source, dlq, reasons=["max_receives"])
    assert report.count("replayed") == 1
    (copy,) = drain(sqs, source)
    assert copy["MessageAttributes"]["source_message_id"]["StringValue"] == own_id


def test_a_dry_run_lists_every_dead_letter_and_changes_nothing(sqs, queues):
    _, source, dlq = queues
    dead_letter(sqs, dlq, "mid:1", 1)
    redriven(sqs, dlq, "mid:2", 2)
    report = replay(sqs, source, dlq, dry_run=True)
    assert report.to_dict()["counts"] == {"would_replay": {"invalid_request": 1, "max_receives": 1}}
    assert report.entries[0]["details"] == {"field": "signals", "rule": "test"}
    assert drain(sqs, source) == []
    assert sorted(seqs(drain(sqs, dlq))) == [1, 2]


def test_a_reason_filter_holds_back_a_visitors_later_messages_in_order(sqs, queues):
    _, source, dlq = queues
    dead_letter(sqs, dlq, "mid:1", 1)
    dead_letter(sqs, dlq, "mid:1", 2, reason="opted_out")
    dead_letter(sqs, dlq, "mid:1", 3)
    dead_letter(sqs, dlq, "mid:2", 4)
    report = replay(sqs, source, dlq, reasons=["invalid_request"])
    assert [(entry["reason"], entry["action"]) for entry in report.entries] == [
        ("invalid_request", "replayed"),
        ("opted_out", "skipped"),
        ("invalid_request", "held_back"),
        ("invalid_request", "replayed"),
    ]
    assert seqs(drain(sqs, source)) == [1, 4]
    assert seqs(drain(sqs, dlq)) == [2, 3]


def test_max_stops_after_that_many_copies(sqs, queues):
    _, source, dlq = queues
    for seq in range(5):
        dead_letter(sqs, dlq, f"mid:{seq}", seq)
    assert replay(sqs, source, dlq, max_messages=2).count("replayed") == 2
    assert len(drain(sqs, source)) == 2
    assert len(drain(sqs, dlq)) == 3


def test_a_copy_the_source_queue_refuses_leaves_the_dead_letter_where_it_was(sqs, queues):
    _, source, dlq = queues
    dead_letter(sqs, dlq, "mid:1", 1)
    report = replay(sqs, source.replace("-signals.fifo", "-gone.fifo"), dlq)
    assert report.count("failed") == 1
    assert "refused" in report.entries[0]["error"]
    assert seqs(drain(sqs, dlq)) == [1]


class DeleteFailsOnce:
    """An SQS client whose first DeleteMessage fails (the run is cut off after the copy)."""

    def __init__(self, sqs):
        self.sqs = sqs
        self.failed = False

    def __getattr__(self, name):
        return getattr(self.sqs, name)

    def delete_message(self, **request):
        if not self.failed:
            self.failed = True
            raise ConnectionError("cut off")
        return self.sqs.delete_message(**request)


def test_a_replay_cut_off_after_the_copy_and_run_again_queues_no_second_copy(sqs, queues):
    _, source, dlq = queues
    dead_letter(sqs, dlq, "mid:1", 1)
    first = replay(DeleteFailsOnce(sqs), source, dlq)
    assert "still in the DLQ" in first.entries[0]["error"]
    assert replay(sqs, source, dlq).count("replayed") == 1
    assert seqs(drain(sqs, source)) == [1]  # the second copy was deduplicated
    assert drain(sqs, dlq) == []


@pytest.mark.parametrize("queue", ["signals", "enrich"])
def test_the_command_finds_the_queues_by_the_stacks_queue_names(sqs, queue, capsys):
    stack = f"s{uuid.uuid4().hex[:8]}"
    source = sqs.create_queue(QueueName=f"{stack}-{queue}.fifo", Attributes=FIFO)["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"{stack}-{queue}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dead_letter(sqs, dlq, "mid:1", 1)
    assert main(["--queue", queue, "--stack", stack, "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["source_queue"], report["dead_letter_queue"]) == (source, dlq)
    assert report["counts"] == {"would_replay": {"invalid_request": 1}}


def test_the_stack_outputs_name_the_queues_when_cloudformation_knows_the_stack(sqs):
    cloudformation = boto3.client("cloudformation")
    template = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"SignalQueueUrl": {"Value": {"Ref": "Q"}}, "SignalDeadLetterQueueUrl": {"Value": "dlq-url"}},
    }
    cloudformation.create_stack(StackName="deployed", TemplateBody=json.dumps(template))
    outputs = stack_outputs(cloudformation, "deployed")
    assert outputs["SignalDeadLetterQueueUrl"] == "dlq-url"
    assert outputs["SignalQueueUrl"] in sqs.list_queues()["QueueUrls"]
    assert stack_outputs(cloudformation, "never-deployed") == {}

"""The queue publisher and the event sink against scripted clients: batching, retries, failures."""

import json

import pytest

from aam_dcs.jobs.events import DomainEvent, EventBridgeSink, EventDeliveryError
from aam_dcs.jobs.publisher import MAX_BATCH_BYTES, QueueMessage, QueuePublisher, batches


def message(n, size=10):
    return QueueMessage(body="x" * size, group_id=f"user:{n}", deduplication_id=f"d{n}")


class ScriptedSqs:
    """Fails entries by group ID for a number of calls: ``failures[group] = (code, sender_fault, times)``."""

    def __init__(self, failures=None):
        self.failures = dict(failures or {})
        self.calls = []

    def send_message_batch(self, QueueUrl, Entries):
        self.calls.append([entry["MessageGroupId"] for entry in Entries])
        failed = []
        for entry in Entries:
            code, sender_fault, times = self.failures.get(entry["MessageGroupId"], (None, False, 0))
            if times:
                self.failures[entry["MessageGroupId"]] = (code, sender_fault, times - 1)
                failed.append({"Id": entry["Id"], "Code": code, "SenderFault": sender_fault})
        return {"Successful": [], "Failed": failed}


def publisher(client):
    queue = QueuePublisher("https://sqs/q.fifo", retry_delay=0)
    queue.client = client
    return queue


def test_a_publisher_uses_the_client_it_is_given():
    client = ScriptedSqs()
    assert QueuePublisher("https://sqs/q.fifo", client=client).publish([message(1)]) == []
    assert client.calls == [["user:1"]]


def test_messages_go_in_batches_of_ten_in_order():
    client = ScriptedSqs()
    assert publisher(client).publish([message(n) for n in range(23)]) == []
    assert [len(call) for call in client.calls] == [10, 10, 3]
    assert [g for call in client.calls for g in call] == [f"user:{n}" for n in range(23)]


def test_batches_stay_under_the_size_cap():
    big = [message(n, size=MAX_BATCH_BYTES // 3 + 1) for n in range(4)]
    assert [len(b) for b in batches(big)] == [2, 2]


def test_failed_entries_are_retried_alone():
    client = ScriptedSqs({"user:1": ("InternalError", False, 1)})
    assert publisher(client).publish([message(0), message(1), message(2)]) == []
    assert client.calls == [["user:0", "user:1", "user:2"], ["user:1"]]


def test_entries_still_failing_after_the_attempts_are_returned():
    client = ScriptedSqs({"user:1": ("ServiceUnavailable", False, 99)})
    (failure,) = publisher(client).publish([message(0), message(1)])
    assert (failure.message.group_id, failure.code, failure.sender_fault) == ("user:1", "ServiceUnavailable", False)
    assert len(client.calls) == 3


def test_sender_faults_are_not_retried():
    client = ScriptedSqs({"user:0": ("InvalidParameterValue", True, 99)})
    (failure,) = publisher(client).publish([message(0)])
    assert failure.sender_fault
    assert len(client.calls) == 1


@pytest.mark.parametrize("group", ["", "x" * 129, "naïve", "tab\there"])
def test_group_and_dedup_ids_are_checked(group):
    with pytest.raises(ValueError, match="group_id"):
        QueueMessage(body="{}", group_id=group, deduplication_id="d")


class ScriptedEvents:
    def __init__(self, failing_calls=0):
        self.failing_calls = failing_calls
        self.calls = []

    def put_events(self, Entries):
        self.calls.append(Entries)
        if self.failing_calls:
            self.failing_calls -= 1
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure"}] + [{"EventId": "e"}] * (len(Entries) - 1),
            }
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}] * len(Entries)}


def sink(client):
    bus = EventBridgeSink("segments-bus", retry_delay=0)
    bus.client = client
    return bus


def test_events_go_to_the_bus_ten_per_call_as_json():
    client = ScriptedEvents()
    sink(client).put([DomainEvent("SegmentsChanged", {"added": [str(n)]}) for n in range(12)])
    assert [len(call) for call in client.calls] == [10, 2]
    entry = client.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "aam-dcs",
        "SegmentsChanged",
        "segments-bus",
    )
    assert json.loads(entry["Detail"]) == {"added": ["0"]}


def test_failed_events_are_retried_then_raise():
    client = ScriptedEvents(failing_calls=1)
    sink(client).put([DomainEvent("SegmentsChanged", {}), DomainEvent("SegmentsChanged", {"n": 2})])
    assert [len(call) for call in client.calls] == [2, 1]
    with pytest.raises(EventDeliveryError):
        sink(ScriptedEvents(failing_calls=5)).put([DomainEvent("SegmentsChanged", {})])

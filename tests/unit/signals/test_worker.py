"""The signal queue worker with fakes: one call per message, redeliveries answered from the store,
permanent failures dead-lettered with a reason, everything else retried after a backoff."""

import json

import pytest

from aam_dcs.errors import DcsBadResponse, DcsRejected, DcsTimeout, DcsUnavailable
from aam_dcs.jobs.idempotency import NoIdempotency
from aam_dcs.jobs.signal_queue import InMemorySignalQueue
from aam_dcs.signals.messages import QueueMessage, build_message
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.worker import Backoff
from aam_dcs.store.memory import InMemoryProfileStore
from tests.support.events import FakeLambdaContext
from tests.support.fakes import FakeDcs
from tests.support.signals import (
    AMCV,
    MID,
    NOW,
    UUID,
    bundle_settings,
    make_sender,
    make_worker,
    message_id,
    receipt_handle,
    sqs_records,
)


class Crash(BaseException):
    """The Lambda process dies (timeout, out of memory) in the middle of a batch."""


@pytest.fixture
def dcs():
    return FakeDcs()


@pytest.fixture
def queue():
    return InMemorySignalQueue()


@pytest.fixture
def sender(dcs, queue):
    return make_sender(dcs=dcs, queue=queue)


def queued(sender, **fields):
    """Queue one call through the async path and return its message."""
    before = len(sender.queue.messages)
    sender.send(SendSignalsInput(mode="async", **fields))
    return sender.queue.messages[before]


def run(worker, *messages, receive_count=1):
    return worker.process(sqs_records(list(messages), receive_count=receive_count), FakeLambdaContext())


def failed_ids(answer):
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def test_a_queued_call_is_sent_once_exactly_as_built(sender, dcs, counts):
    message = queued(sender, amcv=AMCV, signals={"c_color": "blue"}, trait_ids=[5])
    answer = run(make_worker(sender), message)
    assert answer == {"batchItemFailures": []}
    (request,) = dcs.requests
    assert request.target_host == "usw2.demdex.net"
    params = dcs.params()
    assert (params["d_mid"], params["d_blob"], params["c_color"], params["d_sid"]) == (
        [MID],
        ["Zm9vYmFy"],
        ["blue"],
        ["5"],
    )
    assert counts["SignalsSent"] == 1


def test_a_redelivered_message_that_was_delivered_makes_no_second_call(sender, dcs, counts):
    worker = make_worker(sender)
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    run(worker, message)
    assert run(worker, message, receive_count=2) == {"batchItemFailures": []}
    assert len(dcs.requests) == 1
    assert counts["SignalsAlreadyDelivered"] == 1


def test_the_same_event_id_queued_again_later_is_not_sent_again(sender, dcs):
    worker = make_worker(sender)
    first = queued(sender, mid=MID, signals={"c_x": "1"}, event_id="order-1")
    again = QueueMessage(body=first.body.replace("2027", "2028"), group_id=first.group_id, deduplication_id="order-1b")
    worker.process(sqs_records([first]), FakeLambdaContext())
    event = sqs_records([again])
    assert event["Records"][0]["messageId"] != message_id(first)
    worker.process(event, FakeLambdaContext())
    assert len(dcs.requests) == 1


def test_without_idempotency_a_redelivery_calls_again(sender, dcs):
    worker = make_worker(sender, idempotency=NoIdempotency())
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    run(worker, message)
    run(worker, message, receive_count=2)
    assert len(dcs.requests) == 2


def message_with(body, group="mid:" + MID):
    return QueueMessage(body=body if isinstance(body, str) else json.dumps(body), group_id=group, deduplication_id="d")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ([1, 2], "body"),
        ({"kind": "mystery"}, "kind"),
        ({"kind": "send_signals", "request": {"mid": MID, "signals": {"d_uuid": "x"}}, "enqueued_at": "t"}, None),
        ({"kind": "send_signals", "request": {"mid": "12"}, "enqueued_at": "t"}, "request.mid"),
        ({"kind": "send_signals", "request": {"mid": MID, "signals": {}}, "enqueued_at": "t"}, "signals"),
    ],
)
def test_an_invalid_message_is_dead_lettered_with_its_reason_not_retried(sender, dcs, body, field):
    worker = make_worker(sender)
    assert run(worker, message_with(body)) == {"batchItemFailures": []}
    ((_, _, reason, details),) = worker.dead_letters.messages
    assert reason in {"invalid_message", "invalid_request"}
    if field:
        assert details["field"] == field
    assert dcs.requests == []


@pytest.mark.parametrize(
    ("codes", "reason"),
    [
        ([311], "dropped_invalid_parameters"),
        ([171], "opted_out"),
        ([303], "denylisted"),
        ([306, 307], "denylisted"),
        ([198], "blocked_geography"),
    ],
)
def test_a_discarded_call_is_dead_lettered_with_reason_codes_and_tid(sender, dcs, codes, reason, counts):
    dcs.event_answers.append({"tid": "t-5", "errors": [{"code": c, "msg": ""} for c in codes]})
    worker = make_worker(sender)
    message = queued(sender, mid=MID, signals={"c_x": "1"}, event_id="ev-1")
    assert run(worker, message) == {"batchItemFailures": []}
    ((_, body, found_reason, details),) = worker.dead_letters.messages
    assert (found_reason, details) == (reason, {"codes": codes, "tid": "t-5", "event_id": "ev-1"})
    assert body == message.body
    assert counts["SignalsDiscarded"] == 1


def test_a_rejected_call_is_dead_lettered(sender, dcs):
    dcs.event_answers.append(DcsRejected("bad org", codes=[2], tid="t"))
    worker = make_worker(sender)
    run(worker, queued(sender, mid=MID, signals={"c_x": "1"}))
    assert [(m[2], m[3]["codes"]) for m in worker.dead_letters.messages] == [("rejected_by_dcs", [2])]


def test_a_visitor_known_to_have_opted_out_is_dead_lettered_without_a_call(dcs, queue):
    store = InMemoryProfileStore(clock=lambda: NOW)
    sender = make_sender(dcs=dcs, queue=queue, store=store)
    message = queued(sender, uuid=UUID, signals={"c_x": "1"})
    dcs.event_answers.append({"errors": [{"code": 171}]})
    sender.send(SendSignalsInput(uuid=UUID, signals={"c_x": "0"}))  # the DCS says: opted out
    worker = make_worker(sender)
    run(worker, message)
    assert [m[2] for m in worker.dead_letters.messages] == ["opted_out"]
    assert len(dcs.requests) == 1


@pytest.mark.parametrize(
    ("error", "duplicate"),
    [
        (DcsTimeout("late", may_have_processed=True), 1),
        (DcsTimeout("no connect", may_have_processed=False), 0),
        (DcsBadResponse("truncated JSON"), 1),
        (DcsUnavailable("503", status=503), 0),
    ],
)
def test_transient_failures_are_retried_and_possible_duplicates_counted(sender, dcs, error, duplicate, counts):
    queue = sender.queue
    dcs.event_answers.append(error)
    worker = make_worker(sender)
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    answer = run(worker, message)
    assert failed_ids(answer) == [message_id(message)]
    assert queue.delays == {receipt_handle(message): 30}
    assert counts["PossibleDuplicates"] == duplicate
    assert counts["SignalRetries"] == 1
    assert worker.dead_letters.messages == []
    # The retry sends (the failed attempt left no idempotency record): at least once.
    assert run(worker, message, receive_count=2) == {"batchItemFailures": []}
    assert len(dcs.requests) == 2


def fail_the_first_call_for(dcs, mid, error):
    """Groups run in parallel, so a scripted answer must name the visitor it is for."""
    answer, failed = dcs.default_event, []

    def answer_for(request):
        if ("d_mid", mid) in request.params and not failed:
            failed.append(request)
            raise error
        return answer

    dcs.default_event = answer_for


def test_a_failure_delays_the_rest_of_its_group_and_backoff_grows(sender, dcs, queue):
    fail_the_first_call_for(dcs, MID, DcsUnavailable("503", status=503))
    first = queued(sender, mid=MID, signals={"c_x": "1"})
    second = queued(sender, mid=MID, signals={"c_x": "2"})
    other = queued(sender, uuid=UUID, signals={"c_x": "3"})
    worker = make_worker(sender)
    answer = run(worker, first, second, other, receive_count=3)
    assert sorted(failed_ids(answer)) == sorted(message_id(m) for m in (first, second))
    assert queue.delays == {receipt_handle(first): 120, receipt_handle(second): 120}
    assert len(dcs.requests) == 2  # first (failed) and other; second was skipped


def test_a_retry_after_from_the_dcs_is_honoured(sender, dcs, queue):
    dcs.event_answers.append(DcsUnavailable("429", status=429, retry_after=90.2))
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    run(make_worker(sender), message)
    assert queue.delays == {receipt_handle(message): 91}


def test_a_visitor_past_the_cap_waits_in_the_queue_until_the_window_ends(dcs, queue, counts):
    store = InMemoryProfileStore(clock=lambda: NOW)
    clock = [NOW + 15.0]
    sender = make_sender(
        bundle_settings(AAM_USER_CALLS_PER_MINUTE="1"), dcs=dcs, queue=queue, store=store, clock=lambda: clock[0]
    )
    worker = make_worker(sender)
    first = queued(sender, mid=MID, signals={"c_x": "1"})
    second = queued(sender, mid=MID, signals={"c_x": "2"})
    answer = run(worker, first, second)
    assert failed_ids(answer) == [message_id(second)]
    assert queue.delays == {receipt_handle(second): 45}
    assert (counts["DenylistGuardWaits"], len(dcs.requests)) == (1, 1)
    clock[0] = NOW + 61
    assert run(worker, second, receive_count=2) == {"batchItemFailures": []}
    assert len(dcs.requests) == 2


def as_replayed(event, original_id):
    """The event's record as a replayed dead letter: a new message ID, the original's in an attribute."""
    record = event["Records"][0]
    record["messageAttributes"] = {"source_message_id": {"dataType": "String", "stringValue": original_id}}
    record["messageId"] = "message-replayed"
    return event


def test_a_replayed_dead_letter_that_was_delivered_makes_no_second_call(sender, dcs, counts):
    worker = make_worker(sender)
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    run(worker, message)
    replayed = as_replayed(sqs_records([message]), original_id=message_id(message))
    assert worker.process(replayed, FakeLambdaContext()) == {"batchItemFailures": []}
    assert len(dcs.requests) == 1
    assert counts["SignalsAlreadyDelivered"] == 1


def test_a_replayed_dead_letter_never_delivered_is_sent(sender, dcs):
    worker = make_worker(sender)
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    replayed = as_replayed(sqs_records([message]), original_id="message-never-delivered")
    assert worker.process(replayed, FakeLambdaContext()) == {"batchItemFailures": []}
    assert len(dcs.requests) == 1


def test_a_crash_after_the_call_never_leads_to_a_second_call_while_the_record_holds(sender, dcs, counts):
    def crash_after_the_dcs_got_it(request):
        raise Crash

    dcs.event_answers.append(crash_after_the_dcs_got_it)
    worker = make_worker(sender)
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    with pytest.raises(Crash):
        run(worker, message)
    answer = run(worker, message, receive_count=2)
    assert failed_ids(answer) == [message_id(message)]
    assert len(dcs.requests) == 1
    assert counts["DeliveriesInProgress"] == 1


def test_a_crash_after_the_delivery_was_recorded_is_answered_from_the_record(sender, dcs, monkeypatch):
    worker = make_worker(sender)
    message = queued(sender, mid=MID, signals={"c_x": "1"})
    learn = sender.learn

    def crash(*args):
        raise Crash

    monkeypatch.setattr(sender, "learn", crash)
    with pytest.raises(Crash):
        run(worker, message)
    monkeypatch.setattr(sender, "learn", learn)
    assert run(worker, message, receive_count=2) == {"batchItemFailures": []}
    assert len(dcs.requests) == 1


def test_other_message_kinds_go_to_their_handler(sender):
    seen = []

    def resume(body, context):
        seen.append((body["cursor"], context.function_name))

    worker = make_worker(sender, other_kinds={"continue_job": resume})
    run(worker, message_with({"kind": "continue_job", "cursor": "page-2"}, group="job"))
    assert seen == [("page-2", "test-function")]


def test_backoff_doubles_up_to_the_cap():
    backoff = Backoff(base_seconds=30, max_seconds=900)
    assert [backoff.delay(n) for n in (0, 1, 2, 3, 4, 5, 6, 50)] == [30, 30, 60, 120, 240, 480, 900, 900]


def test_the_blob_queued_with_the_message_is_sent(sender, dcs):
    request = SendSignalsInput(mid=MID, signals={"c_x": "1"})
    resolved = sender.resolver.resolve(request).model_copy(update={"blob": "YmxvYg"})
    run(make_worker(sender), build_message(request, resolved, now=NOW))
    assert dcs.params()["d_blob"] == ["YmxvYg"]

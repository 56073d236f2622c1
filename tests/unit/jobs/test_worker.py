import threading

import pytest

from aam_dcs.jobs.deadletter import InMemoryDeadLetters
from aam_dcs.jobs.worker import PermanentFailure, group_threads, process_fifo_batch
from tests.support.events import FakeLambdaContext, sqs_event


class Crash(BaseException):
    """Stands for the Lambda runtime dying mid-batch."""


def batch(*groups_and_bodies):
    return sqs_event(list(groups_and_bodies))


def ids_of(event, *positions):
    return [{"itemIdentifier": event["Records"][p]["messageId"]} for p in positions]


def test_messages_of_a_group_run_in_queue_order():
    seen = []
    event = batch(*[("visitor-1", {"n": n}) for n in range(10)])
    answer = process_fifo_batch(event, FakeLambdaContext(), lambda r: seen.append(r.json_body["n"]))
    assert answer == {"batchItemFailures": []}
    assert seen == list(range(10))


def test_groups_run_concurrently():
    groups = 5
    barrier = threading.Barrier(groups, timeout=5)
    event = batch(*[(f"visitor-{g}", {"g": g}) for g in range(groups)])
    # Each handler waits for all the others: this only completes if the five groups run at once.
    answer = process_fifo_batch(event, FakeLambdaContext(), lambda r: barrier.wait())
    assert answer == {"batchItemFailures": []}


def test_a_failure_skips_the_rest_of_its_group_only():
    ran = []

    def handle(record):
        ran.append((record.attributes.message_group_id, record.json_body["n"]))
        if record.json_body["n"] == 1:
            raise RuntimeError("DCS unavailable")

    event = batch(("a", {"n": 0}), ("a", {"n": 1}), ("b", {"n": 2}), ("a", {"n": 3}), ("b", {"n": 4}))
    answer = process_fifo_batch(event, FakeLambdaContext(), handle)
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(
        f["itemIdentifier"] for f in ids_of(event, 1, 3)
    )
    assert ("a", 3) not in ran
    assert ("b", 4) in ran


def test_a_batch_that_fails_entirely_is_reported_not_raised():
    event = batch(("a", {}), ("b", {}))
    answer = process_fifo_batch(event, FakeLambdaContext(), lambda r: 1 / 0)
    assert len(answer["batchItemFailures"]) == 2


def test_permanent_failures_are_dead_lettered_with_the_reason_and_acknowledged():
    dead = InMemoryDeadLetters()

    def handle(record):
        if record.json_body["n"] == 0:
            raise PermanentFailure("dropped by the DCS", codes=[311])

    event = batch(("a", {"n": 0}), ("a", {"n": 1}))
    answer = process_fifo_batch(event, FakeLambdaContext(), handle, dead_letters=dead)
    assert answer == {"batchItemFailures": []}
    assert [(m[0], m[2], m[3]) for m in dead.messages] == [
        (event["Records"][0]["messageId"], "dropped by the DCS", {"codes": [311]})
    ]


def test_permanent_failures_without_a_dlq_are_left_to_sqs_redrive():
    def handle(record):
        raise PermanentFailure("invalid message")

    event = batch(("a", {"n": 0}))
    assert process_fifo_batch(event, FakeLambdaContext(), handle) == {"batchItemFailures": ids_of(event, 0)}


def test_a_crash_propagates_so_the_whole_batch_is_redelivered():
    def handle(record):
        raise Crash

    with pytest.raises(Crash):
        process_fifo_batch(batch(("a", {}), ("b", {})), FakeLambdaContext(), handle)


def test_the_container_keeps_its_group_threads_from_one_batch_to_the_next():
    groups = 3
    barrier = threading.Barrier(groups, timeout=5)
    threads = []

    def handle(record):
        threads.append(threading.current_thread())
        barrier.wait()  # the three groups of a batch run at once, in three threads

    for n in range(4):
        process_fifo_batch(batch(*[(f"visitor-{g}", {"n": n}) for g in range(groups)]), FakeLambdaContext(), handle)
    distinct = {id(thread): thread for thread in threads}
    assert len(threads) == 12
    assert groups <= len(distinct) <= 10  # new threads for every batch would make twelve
    assert all(thread.name.startswith("sqs-group") for thread in distinct.values())


def test_a_batch_of_one_group_runs_in_the_calling_thread():
    threads = []
    process_fifo_batch(
        batch(("a", {}), ("a", {})), FakeLambdaContext(), lambda r: threads.append(threading.current_thread())
    )
    assert threads == [threading.current_thread()] * 2


def test_concurrent_invokers_each_get_their_own_group_threads():
    pools = []
    invokers = [threading.Thread(target=lambda: pools.append(group_threads(10))) for _ in range(2)]
    for invoker in invokers:
        invoker.start()
    for invoker in invokers:
        invoker.join()
    assert pools[0] is not pools[1]
    assert group_threads(10) is group_threads(10)


def received(event, times):
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(times)
    return event


def failing_on(n):
    def handle(record):
        if record.json_body["n"] == n:
            raise RuntimeError("DCS unavailable")

    return handle


def test_before_the_last_receive_a_failure_and_its_skipped_group_are_retried():
    dead_letters = InMemoryDeadLetters()
    event = received(batch(("a", {"n": 1}), ("a", {"n": 2})), 4)
    answer = process_fifo_batch(event, FakeLambdaContext(), failing_on(1), dead_letters=dead_letters, max_receives=5)
    assert answer["batchItemFailures"] == ids_of(event, 0, 1)
    assert dead_letters.messages == []


def test_at_the_last_receive_a_failing_message_is_dead_lettered_with_its_reason():
    dead_letters = InMemoryDeadLetters()
    event = received(batch(("a", {"n": 1}), ("a", {"n": 2})), 5)
    answer = process_fifo_batch(event, FakeLambdaContext(), failing_on(1), dead_letters=dead_letters, max_receives=5)
    # SQS would move it without a word on the next receive; the group goes on, as it would then.
    assert answer == {"batchItemFailures": []}
    ((message_id, _, reason, details),) = dead_letters.messages
    assert message_id == event["Records"][0]["messageId"]
    assert (reason, details) == ("retries_exhausted", {"receive_count": 5, "error": "RuntimeError"})


def test_a_message_held_back_by_its_group_at_its_last_receive_is_dead_lettered_too():
    dead_letters = InMemoryDeadLetters()
    event = batch(("a", {"n": 1}), ("a", {"n": 2}), ("a", {"n": 3}))
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "5"  # skipped four times already
    answer = process_fifo_batch(event, FakeLambdaContext(), failing_on(1), dead_letters=dead_letters, max_receives=5)
    assert answer["batchItemFailures"] == ids_of(event, 0, 2)
    ((message_id, _, reason, details),) = dead_letters.messages
    assert (message_id, reason) == (event["Records"][1]["messageId"], "retries_exhausted")
    assert details["skipped"]


def test_without_a_dlq_the_last_receive_is_left_to_sqs():
    event = received(batch(("a", {"n": 1})), 5)
    answer = process_fifo_batch(event, FakeLambdaContext(), failing_on(1), max_receives=5)
    assert answer["batchItemFailures"] == ids_of(event, 0)

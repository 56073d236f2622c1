"""Dead letters replayed after a fix: every signal reaches the DCS exactly once.

Two worker bugs dead-letter signals (the machinery is ``tests/support/signal_delivery.py``):

- a validation bug refuses some messages before any DCS call: they are dead-lettered at once as
  ``invalid_request``;
- a bug after the DCS call (in ``learn``) fails others once they were delivered: every redelivery
  is answered from the idempotency record (no second call) until their last receive, when the
  worker dead-letters them as ``retries_exhausted``, together with the visitor's messages queued
  behind them (skipped, but counted as received each time). Some carry an ``event_id``, the
  others are keyed on their original message ID.

The opted-out visitor's signals are dead-lettered as ``opted_out``. After the fix, the replay
command re-drives ``invalid_request`` and ``retries_exhausted``, not ``opted_out``: the refused
signals reach the DCS once, and those delivered before they were dead-lettered are not sent again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aam_dcs.errors import InvalidRequest
from aam_dcs.jobs import replay
from local.poller import wait_until_drained
from tests.integration.signals.conftest import Aws
from tests.support.signal_delivery import (
    OPTED_OUT_UUID,
    Workload,
    accept_all,
    dead_letters,
    processed_calls,
    quiet_logs,
    signal_poller,
    wire,
)

pytestmark = pytest.mark.integration

WORKLOAD = Workload(visitors=6, signals_per_visitor=3)


def seq_of(request: Any) -> int:
    return int(request.signals["c_seq"])


def refused(request: Any) -> bool:
    return request.uuid is None and seq_of(request) % 5 == 0


def fails_after_delivery(request: Any) -> bool:
    return request.uuid is None and seq_of(request) % 5 == 1


class Bugs:
    """The worker's two bugs, until ``fix``."""

    def __init__(self, sender: Any) -> None:
        self.sender = sender
        prepare, learn = sender.prepare, sender.learn

        def buggy_prepare(request: Any) -> Any:
            if refused(request):
                raise InvalidRequest("a validation bug", field="signals", rule="refused by mistake")
            return prepare(request)

        def buggy_learn(call: Any, delivery: Any) -> Any:
            if fails_after_delivery(call.request):
                raise RuntimeError("a bug after the DCS call")
            return learn(call, delivery)

        sender.prepare, sender.learn = buggy_prepare, buggy_learn

    def fix(self) -> None:
        del self.sender.prepare, self.sender.learn


@pytest.fixture
def aws(served_aws: Aws) -> Aws:
    return served_aws


def work_the_queue(aws: Aws, function: Any) -> None:
    with quiet_logs(), signal_poller(aws, function) as poller:
        assert wait_until_drained(aws.sqs, [aws.queue_url], [poller], timeout=60), poller.stats.as_dict()


def replay_command(aws: Aws, capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    """``python -m aam_dcs.jobs.replay`` for the signal queue, queues found by the stack's name; its report."""
    stack = aws.queue_url.rsplit("/", 1)[1].removesuffix("-signals.fifo")
    argv = ["--queue", "signals", "--stack", stack, "--endpoint-url", str(aws.endpoint), *options]
    capsys.readouterr()
    assert replay.main(argv) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_replayed_dead_letters_are_delivered_exactly_once(function, sim, aws, capsys):
    sender = wire(function)
    accepted = accept_all(function, WORKLOAD)  # accepted before the buggy worker runs
    opted_out = {seq for seq, who in accepted.items() if who == OPTED_OUT_UUID}
    bugs = Bugs(sender)
    work_the_queue(aws, function)

    before = dead_letters(aws, keep=True)
    calls = processed_calls(sim.calls("/event"))
    refused_seqs = {seq for seq in accepted if seq not in opted_out and seq % 5 == 0}
    failed_seqs = {seq for seq in accepted if seq not in opted_out and seq % 5 == 1}
    redriven = {seq for seq, reason in before.items() if reason == "retries_exhausted"}
    # The messages queued behind a failing one of the same visitor go too: they were handed out,
    # skipped and counted as received each time.
    assert failed_seqs <= redriven
    assert before == {
        **dict.fromkeys(opted_out, "opted_out"),
        **dict.fromkeys(refused_seqs, "invalid_request"),
        **dict.fromkeys(redriven, "retries_exhausted"),
    }
    delivered_then_dead = {seq for seq in redriven if calls.get(seq)}
    assert delivered_then_dead == failed_seqs
    assert all(len(calls[seq]) == 1 for seq in delivered_then_dead)
    assert {seq % 2 for seq in delivered_then_dead} == {0, 1}, "with and without an event_id"

    bugs.fix()
    report = replay_command(aws, capsys, "--reason", "invalid_request", "--reason", "retries_exhausted")
    work_the_queue(aws, function)

    assert report["counts"]["replayed"] == {"invalid_request": len(refused_seqs), "retries_exhausted": len(redriven)}
    assert set(report["counts"]) <= {"replayed", "skipped", "held_back"}
    assert dead_letters(aws) == dict.fromkeys(opted_out, "opted_out")
    calls = processed_calls(sim.calls("/event"))
    assert {seq: len(calls[seq]) for seq in accepted if seq not in opted_out} == dict.fromkeys(
        set(accepted) - opted_out, 1
    )

"""No accepted signal is lost: 1,000 queued signals for 100 visitors, 20 % transient DCS faults, and a
worker that dies once in the middle of a batch.

The machinery (template queues on moto servers, the deployed worker with Powertools idempotency, the
local SQS poller with Lambda's semantics, the simulator's call log) is in
``tests/support/signal_delivery.py``; the fault suite (``tests/reliability``) runs the same path
under one fault at a time.

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

import pytest

from tests.integration.signals.conftest import Aws
from tests.support.signal_delivery import (
    OPTED_OUT_UUID,
    Tally,
    Workload,
    accept_all,
    crash_after_delivery,
    dead_letters,
    processed_calls,
    quiet_logs,
    settle,
    signal_poller,
    wire,
)

pytestmark = pytest.mark.integration

WORKLOAD = Workload(visitors=100, signals_per_visitor=10)
CRASH_AT_DELIVERY = 300
FAULTS = {"seed": 2024, "error_rate": 0.07, "reset_rate": 0.07, "malformed_rate": 0.06}


@pytest.fixture
def aws(served_aws: Aws) -> Aws:
    return served_aws


def test_no_accepted_signal_is_lost(function, sim, aws):
    sender = wire(function)
    crash = crash_after_delivery(sender, at={CRASH_AT_DELIVERY})
    sim.set_faults(**FAULTS)
    with quiet_logs():
        with signal_poller(aws, function) as poller:
            # Signals are accepted while the worker runs, as in production (and moto's FIFO queue,
            # which scans every message on each call, stays small).
            accepted = accept_all(function, WORKLOAD)
            # Generous limits: about 35 s on an idle 2-CPU machine, more when it is busy.
            drained = settle(poller, aws, len(accepted), timeout=120)
        left = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])["Attributes"]
        stats, calls, dlq = sim.stats(), processed_calls(sim.calls("/event")), dead_letters(aws)

    assert len(accepted) > WORKLOAD.signals - WORKLOAD.signals_per_visitor  # all but the opted-out's
    assert drained, json.dumps([poller.stats.as_dict(), left])
    assert len(crash.crashed) == 1, "the worker never crashed"
    assert poller.stats.handler_errors >= 1

    tally = Tally.of(accepted, calls, dlq)
    assert tally.redriven == 0, "a signal was redriven without a reason"
    # A second processed call only ever follows an answer the worker could not read.
    assert tally.unexplained == [], [(seq, [c["fault"] for c in calls[seq]]) for seq in tally.unexplained]
    opted_out = [seq for seq, visitor in accepted.items() if visitor == OPTED_OUT_UUID]
    assert {seq: dlq.get(seq) for seq in opted_out} == dict.fromkeys(opted_out, "opted_out")
    assert tally.lost == [], tally.as_dict()
    crashed = [c["fault"] for c in calls[crash.crashed[0]]]
    assert crashed.count(None) == 1, f"the crash caused a second call: {crashed}"
    assert tally.received_once + tally.duplicated + len(dlq) == len(accepted)
    assert stats["max_in_flight_per_user"] == 1
    assert stats["concurrent_violations"] == []
    assert stats["calls_with_cookie"] == 0
    faults = stats["faults_applied"]
    assert all(faults.get(kind, 0) > 0 for kind in ("error", "reset", "malformed")), faults
    print(
        "\nno-loss figures:",
        json.dumps(
            {
                **tally.as_dict(),
                "faults_applied": faults,
                "dcs_calls": stats["calls_by_path"].get("/event"),
                "batches": poller.stats.batches,
                "handler_errors": poller.stats.handler_errors,
                "crashed_seq": crash.crashed[0],
            }
        ),
    )

"""The asynchronous send: validate and resolve now, then one FIFO message per call."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aam_dcs.errors import FeatureDisabled, InvalidRequest, PayloadTooLarge
from aam_dcs.ids.models import CustomerId, ResolvedIdentity
from aam_dcs.jobs.signal_queue import InMemorySignalQueue
from aam_dcs.signals.messages import build_message, message_group, parse_message
from aam_dcs.signals.models import SendSignalsInput
from tests.support.fakes import FakeDcs
from tests.support.signals import AMCV, MID, NOW, OPTED_OUT_AMCV, UUID, body_of, make_sender

ORG_COOKIE = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"
CONSENT = {"gdpr": True, "gdpr_consent": "CPzHq4APzHq4A"}


@pytest.fixture
def queue():
    return InMemorySignalQueue()


def send_async(sender, **fields):
    return sender.send(SendSignalsInput(mode="async", **fields))


def test_an_async_call_is_queued_not_sent(queue, counts):
    dcs = FakeDcs()
    result = send_async(make_sender(dcs=dcs, queue=queue), amcv=AMCV, signals={"c_color": "blue"}, event_id="e-1")
    assert (result.status, result.region_id) == ("queued", 9)
    assert dcs.requests == []
    (message,) = queue.messages
    assert (message.group_id, message.deduplication_id) == (f"mid:{MID}", "e-1")
    assert counts["SignalsQueued"] == 1


def test_the_message_carries_the_resolved_identity_and_no_cookies_or_mode(queue):
    sender = make_sender(queue=queue)
    send_async(
        sender,
        cookies=f"{ORG_COOKIE}={AMCV}",
        signals={"c_color": "blue", "c_sizes": ["m", "l"]},
        trait_ids=[5],
        consent=CONSENT,
        customer_ids=[{"data_source_id": 123, "id": "crm-1", "auth_state": 1}],
        return_segments=True,
        user_agent="Mozilla/5.0",
    )
    body = body_of(queue.messages[0])
    assert body == {
        "kind": "send_signals",
        "request": {
            "mid": MID,
            "region_id": 9,
            "customer_ids": [{"data_source_id": 123, "id": "crm-1", "auth_state": 1}],
            "signals": {"c_color": "blue", "c_sizes": ["m", "l"]},
            "trait_ids": [5],
            "consent": CONSENT,
            "user_agent": "Mozilla/5.0",
        },
        "enqueued_at": "2027-01-15T08:00:00Z",
        "blob": "Zm9vYmFy",
    }
    # The worker reads it back as a valid request.
    assert parse_message(queue.messages[0].body).request.mid == MID


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"signals": {"d_uuid": "1"}}, InvalidRequest, "signals.d_uuid"),
        ({"signals": {}}, InvalidRequest, "signals"),
        ({"signals": {"c_x": "line\nbreak"}}, InvalidRequest, "signals.c_x"),
        ({"signals": {f"c_k{i}": "v" * 1000 for i in range(40)}}, PayloadTooLarge, "signals"),
    ],
)
def test_bad_input_is_refused_now_and_nothing_is_queued(queue, fields, error, field):
    with pytest.raises(error) as info:
        send_async(make_sender(queue=queue), mid=MID, **fields)
    assert info.value.field == field
    assert queue.messages == []


def test_a_visitor_nothing_identifies_is_refused_now(queue):
    with pytest.raises(InvalidRequest):
        send_async(make_sender(queue=queue), signals={"c_x": "1"})
    assert queue.messages == []


def test_an_opted_out_visitor_is_skipped_not_queued(queue):
    result = send_async(make_sender(queue=queue), amcv=OPTED_OUT_AMCV, signals={"c_x": "1"})
    assert result.status == "skipped_opted_out"
    assert queue.messages == []


def test_without_a_queue_async_is_a_503_naming_the_setting():
    with pytest.raises(FeatureDisabled) as info:
        send_async(make_sender(queue=None), mid=MID, signals={"c_x": "1"})
    assert info.value.http_status == 503
    assert info.value.setting == "SIGNAL_QUEUE_URL"
    assert "SIGNAL_QUEUE_URL" in info.value.message


def test_an_async_dry_run_answers_the_call_and_queues_nothing(queue):
    result = send_async(make_sender(queue=queue), mid=MID, signals={"c_x": "1"}, dry_run=True)
    assert result.status == "dry_run"
    assert queue.messages == []


def resolved(**fields):
    values = {"region_host": "acme.demdex.net", "region_source": "partner"}
    return ResolvedIdentity(**{**values, **fields})


def test_the_message_group_is_the_visitor():
    assert message_group(resolved(mid=MID, uuid=UUID)) == f"mid:{MID}"
    assert message_group(resolved(uuid=UUID)) == f"uuid:{UUID}"
    group = message_group(resolved(customer_ids=[CustomerId(data_source_id=123, id="crm-1")]))
    assert group.startswith("cid:")
    assert "crm-1" not in group


customer_ids = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60).filter(
    lambda s: s.strip()
)


@settings(max_examples=200, deadline=None)
@given(customer_id=customer_ids, data_source=st.integers(1, 2**40), code=st.booleans())
def test_a_message_group_never_holds_a_raw_customer_id(customer_id, data_source, code):
    customer = (
        CustomerId(integration_code="crm", id=customer_id)
        if code
        else CustomerId(data_source_id=data_source, id=customer_id)
    )
    request = SendSignalsInput(customer_ids=[customer], signals={"c_x": "1"})
    message = build_message(request, resolved(customer_ids=[customer]), now=NOW)
    # Only a hash: nothing of the customer ID survives, and SQS accepts the characters and length.
    assert re.fullmatch(r"cid:[0-9a-f]{40}", message.group_id)


def test_the_dedup_id_is_the_event_id_or_a_content_hash(queue):
    sender = make_sender(queue=queue)
    for _ in range(2):
        send_async(sender, mid=MID, signals={"c_x": "1"})
    send_async(sender, mid=MID, signals={"c_x": "2"})
    send_async(sender, uuid=UUID, signals={"c_x": "1"})
    send_async(sender, mid=MID, signals={"c_x": "1"}, event_id="e-7")
    dedup_ids = [m.deduplication_id for m in queue.messages]
    assert len(queue.messages) == 4  # the identical second call was a duplicate
    assert dedup_ids[-1] == "e-7"
    assert all(len(d) == 64 for d in dedup_ids[:3])
    assert len(set(dedup_ids)) == 4


def test_the_content_hash_does_not_depend_on_the_time_or_the_key_order():
    request = SendSignalsInput(mid=MID, signals={"a": "1", "b": "2"})
    swapped = SendSignalsInput(mid=MID, signals={"b": "2", "a": "1"})
    identity = resolved(mid=MID)
    first = build_message(request, identity, now=NOW)
    assert build_message(request, identity, now=NOW + 60).deduplication_id == first.deduplication_id
    assert build_message(swapped, identity, now=NOW).deduplication_id == first.deduplication_id
    assert json.loads(first.body)["enqueued_at"] == "2027-01-15T08:00:00Z"

"""The batch signal job's rows: JSON objects or CSV cells become the message the API would queue."""

import json

import pytest

from aam_dcs.errors import FeatureDisabled, InvalidRequest
from aam_dcs.ids.models import parse_identity
from aam_dcs.ids.sources import resolve_identity
from aam_dcs.jobs.planner import JobPlanner, RowRejected
from aam_dcs.jobs.publisher import InMemoryQueue
from aam_dcs.jobs.sources import SourceRow
from aam_dcs.jobs.worker import PermanentFailure
from aam_dcs.signals.job import SignalRows, check_call, fits_when_encoded, resume_job, row_input, signal_planner
from aam_dcs.signals.messages import parse_message
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.wire import data_params, event_request
from tests.support.events import FakeLambdaContext
from tests.support.signals import AMCV, MID, NOW, OPTED_OUT_AMCV, UUID, bundle_settings

SETTINGS = bundle_settings(SIGNAL_QUEUE_URL="https://sqs.us-west-2.amazonaws.com/1/signals.fifo")


def rows():
    return SignalRows(SETTINGS, clock=lambda: NOW)


def test_a_json_row_becomes_the_message_the_api_would_queue():
    planned = rows()({"amcv": AMCV, "signals": {"c_color": "blue", "c_sizes": ["m", "l"]}, "event_id": "e-1"})
    assert planned is not None
    assert (planned.group_id, planned.dedup_key) == (f"mid:{MID}", "e-1")
    assert planned.body == {
        "kind": "send_signals",
        "request": {
            "mid": MID,
            "region_id": 9,
            "signals": {"c_color": "blue", "c_sizes": ["m", "l"]},
            "event_id": "e-1",
        },
        "enqueued_at": "2027-01-15T08:00:00Z",
        "blob": "Zm9vYmFy",
    }
    assert parse_message(json.dumps(planned.body)).request.event_id == "e-1"


def test_csv_cells_follow_the_documented_columns():
    row = {
        "uuid": UUID,
        "region_id": "6",
        "signal.c_color": "blue",
        "signal.c_note": "a b&c=d%",
        "signals": '{"c_sizes": ["m", "l"], "p_age": 23}',
        "trait_ids": "12, 34",
        "customer_id": "crm-1",
        "data_source_id": "123",
        "auth_state": "1",
        "gdpr": "1",
        "gdpr_consent": "CPzHq4A",
        "event_id": "",
        "referer": "",
    }
    planned = rows()(row)
    assert planned is not None
    request = planned.body["request"]
    assert request == {
        "uuid": UUID,
        "region_id": 6,
        "customer_ids": [{"data_source_id": 123, "id": "crm-1", "auth_state": 1}],
        "signals": {"c_sizes": ["m", "l"], "p_age": 23, "c_color": "blue", "c_note": "a b&c=d%"},
        "trait_ids": [12, 34],
        "consent": {"gdpr": True, "gdpr_consent": "CPzHq4A"},
    }
    assert planned.group_id == f"uuid:{UUID}"
    assert len(planned.dedup_key) == 64  # a content hash: no event_id


def test_the_dedup_key_does_not_change_with_the_time():
    row = {"mid": MID, "signals": {"c_x": "1"}}
    first = SignalRows(SETTINGS, clock=lambda: NOW)(row)
    later = SignalRows(SETTINGS, clock=lambda: NOW + 3600)(row)
    assert first is not None
    assert later is not None
    assert first.dedup_key == later.dedup_key


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"mid": MID}, "signals"),
        ({"signals": {"c_x": "1"}}, "mid"),
        ({"mid": "123", "signal.c_x": "1"}, "mid"),
        ({"mid": MID, "signal.d_uuid": "1"}, "signals.d_uuid"),
        ({"mid": MID, "signals": "{not json"}, "signals"),
        ({"mid": MID, "signals": "[1]"}, "signals"),
        ({"mid": MID, "signals": '{"c_x": "1"}', "signal.c_x": "2"}, "signals.c_x"),
        ({"mid": MID, "signal.c_x": "1", "mode": "sync"}, "mode"),
        ({"mid": MID, "signal.c_x": "1", "dry_run": "true"}, "dry_run"),
        ({"mid": MID, "signal.c_x": "1", "trait_ids": "12,x"}, "trait_ids[1]"),
        ({"mid": MID, "signal.c_x": "1", "gdpr": "1"}, "consent.gdpr_consent"),
        ({"mid": MID, "signal.c_x": "1", "data_source_id": "123"}, "customer_id"),
        ({"mid": MID, "signal.c_x": "1", "colour": "blue"}, "colour"),
        ({"mid": MID, **{f"signal.c_k{i}": "v" * 1000 for i in range(40)}}, "signals"),
    ],
)
def test_a_bad_row_is_rejected_naming_the_field(row, field):
    with pytest.raises((InvalidRequest, RowRejected)) as info:
        rows()(row)
    assert info.value.field == field


def test_a_visitor_whose_own_cookie_says_opted_out_is_skipped():
    assert rows()({"amcv": OPTED_OUT_AMCV, "signal.c_x": "1"}) is None


def test_row_input_leaves_json_values_alone():
    assert row_input({"mid": MID, "signals": {"c_x": 1}, "trait_ids": [5]}) == {
        "mid": MID,
        "signals": {"c_x": 1},
        "trait_ids": [5],
    }


class ListSource:
    def __init__(self, items):
        self.items = items

    def rows(self, cursor=None):
        start = 0 if cursor is None else cursor["line"]
        for line, item in enumerate(self.items[start:], start + 1):
            yield SourceRow(data=item, position={"key": "rows.jsonl", "line": line}, cursor={"line": line})


def test_the_planner_queues_good_rows_and_reports_bad_ones():
    queue = InMemoryQueue()
    source = ListSource(
        [
            {"mid": MID, "signals": {"c_x": "1"}},
            {"mid": MID, "signals": {"d_sid": "1"}},
            {"amcv": OPTED_OUT_AMCV, "signals": {"c_x": "1"}},
            {"uuid": UUID, "signals": {"c_x": "2"}, "event_id": "e-2"},
        ]
    )
    planner = JobPlanner(job="send_signals", map_row=rows(), publisher=queue, open_source=lambda spec: source)
    summary = planner.plan({"job": "send_signals", "source": {"s3": "s3://bucket/rows.jsonl"}}, FakeLambdaContext())
    assert {k: summary[k] for k in ("job", "read", "queued", "rejected", "skipped")} == {
        "job": "send_signals",
        "read": 4,
        "queued": 2,
        "rejected": 1,
        "skipped": 1,
    }
    assert summary["errors"] == [
        {
            "position": {"key": "rows.jsonl", "line": 2},
            "reason": summary["errors"][0]["reason"],
            "field": "signals.d_sid",
        }
    ]
    assert [m.group_id for m in queue.messages] == [f"mid:{MID}", f"uuid:{UUID}"]
    assert all(parse_message(m.body) for m in queue.messages)


def test_the_planner_needs_the_signal_queue():
    with pytest.raises(FeatureDisabled) as info:
        signal_planner(bundle_settings())
    assert info.value.setting == "SIGNAL_QUEUE_URL"


def test_a_bad_continuation_is_dead_lettered():
    planner = signal_planner(SETTINGS)
    with pytest.raises(PermanentFailure) as info:
        resume_job(lambda: planner, {"kind": "continue_job", "job": {"job": "other"}}, FakeLambdaContext())
    assert info.value.reason == "invalid_message"


def _outcome(check):
    """What a check did: ``None``, or the error's class name and field."""
    try:
        check()
    except (InvalidRequest, RowRejected) as error:
        return type(error).__name__, error.field
    return None


def _signals(character: str, total: int) -> dict[str, list[str]]:
    """``total`` characters of signal values, in values of at most 1,000 characters."""
    values = [character * min(1000, total - start) for start in range(0, total, 1000)]
    return {f"c_k{n}": values[n : n + 100] for n in range(0, len(values), 100)}


@pytest.mark.parametrize(
    "row",
    [
        {"mid": MID, "signals": {"c_x": "blue"}},
        {"mid": MID, "signals": _signals("a", 10_000)},  # within the shortcut's bound
        {"mid": MID, "signals": _signals("a", 20_000)},  # over the shortcut's bound, under the limit
        {"mid": MID, "signals": _signals("a", 33_000)},  # over the limit unencoded
        {"mid": MID, "signals": _signals("%", 11_000)},  # fits unencoded, not encoded
        {"mid": MID, "signals": _signals("é", 5_000)},  # non-ASCII, under the limit
        {"mid": MID, "signals": _signals("é", 5_500)},  # non-ASCII, over the limit encoded
        {"mid": MID, "signals": {"c_x": "1"}, "user_agent": "Mozilla/5.0", "referer": "https://a.example/?q=1"},
    ],
)
def test_the_call_check_agrees_with_building_the_call(row):
    request = parse_identity(row_input(row), SendSignalsInput)
    resolved = resolve_identity(request, SETTINGS, now=NOW)
    params = data_params(request)
    built = _outcome(lambda: event_request(request, resolved, SETTINGS, data=params))
    assert _outcome(lambda: check_call(request, resolved, SETTINGS, params)) == built


def test_only_short_ascii_calls_skip_the_encoding():
    assert fits_when_encoded([("d_mid", MID), ("c_x", "a b&c")], limit=200)
    assert not fits_when_encoded([("c_x", "a" * 100)], limit=200)
    assert not fits_when_encoded([("c_x", "é")], limit=200)

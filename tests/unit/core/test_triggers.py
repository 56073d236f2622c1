import pytest

from aam_dcs.errors import InvalidRequest
from aam_dcs.triggers import Trigger, classify, dispatch
from tests.support.events import api_event, sqs_event


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        (api_event("GET", "/ids"), Trigger.API),
        (sqs_event([("u1", {"kind": "send_signals"})]), Trigger.SQS),
        ({"job": "enrich_segments", "source": {"table": "profiles"}}, Trigger.JOB),
        ({"mid": "1" * 38}, Trigger.DIRECT),
        ({}, Trigger.DIRECT),
        ([1, 2], Trigger.DIRECT),
        ({"Records": [{"eventSource": "aws:s3"}]}, Trigger.DIRECT),
        ({"Records": []}, Trigger.DIRECT),
    ],
)
def test_classify(event, trigger):
    assert classify(event) is trigger


def test_dispatch_calls_the_route_of_the_trigger():
    seen = []
    result = dispatch({"mid": "x"}, None, direct=lambda e, c: seen.append(e) or "direct-result")
    assert result == "direct-result"
    assert seen == [{"mid": "x"}]


def test_dispatch_refuses_a_trigger_the_function_does_not_serve():
    with pytest.raises(InvalidRequest) as info:
        dispatch(sqs_event([("g", {})]), None, direct=lambda e, c: None)
    assert info.value.field == "event"
    assert "sqs" in info.value.message

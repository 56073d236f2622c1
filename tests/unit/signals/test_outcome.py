"""What a DCS answer to a signal call means: sent, discarded (with the codes), or a transient failure."""

import json

import pytest

from aam_dcs.dcs.response import parse_event_response
from aam_dcs.errors import DcsUnavailable
from aam_dcs.ids.models import ResolvedIdentity
from aam_dcs.signals.outcome import Delivery, interpret, learned_identity
from tests.support.signals import MID, UUID


def answer(**body):
    return parse_event_response(json.dumps(body).encode())


def errors(*codes):
    return [{"code": code, "msg": f"message {code}"} for code in codes]


def test_a_clean_answer_is_sent():
    delivery = interpret(answer(uuid=UUID, dcs_region=9, tid="t-1"))
    assert (delivery.status, delivery.tid, delivery.uuid, delivery.dcs_region, delivery.warnings) == (
        "sent",
        "t-1",
        UUID,
        9,
        [],
    )


@pytest.mark.parametrize("codes", [(309,), (301, 309, 309), (310,), (312,), (313,), (104,), (300, 302)])
def test_warnings_ride_along_with_a_sent_call(codes):
    delivery = interpret(answer(uuid=UUID, errors=errors(*codes)))
    assert delivery.status == "sent"
    assert [w["code"] for w in delivery.warnings] == list(codes)


@pytest.mark.parametrize(
    ("codes", "reason"),
    [
        ((171,), "opted_out"),
        ((172,), "opted_out"),
        ((173,), "opted_out"),
        ((198,), "blocked_geography"),
        ((199,), "blocked_geography"),
        ((311,), "dropped_invalid_parameters"),
        ((303,), "denylisted"),
        ((306, 307), "denylisted"),
        ((309, 311), "dropped_invalid_parameters"),
    ],
)
def test_discarding_codes_make_the_call_discarded_with_the_codes_in_warnings(codes, reason):
    delivery = interpret(answer(errors=errors(*codes)))
    assert delivery.status == "discarded"
    assert delivery.reason == reason
    assert [w["code"] for w in delivery.warnings] == list(codes)
    assert delivery.result(9).model_dump()["warnings"] == [{"code": c, "msg": f"message {c}"} for c in codes]


def test_opt_out_codes_mark_the_result_opted_out():
    assert interpret(answer(errors=errors(171))).result(9).opted_out is True
    assert interpret(answer(errors=errors(311))).result(9).opted_out is False


@pytest.mark.parametrize("code", [0, 10, 200, 204])
def test_a_transient_dcs_error_is_unavailable_and_may_have_been_processed(code):
    with pytest.raises(DcsUnavailable) as info:
        interpret(answer(tid="t-9", errors=errors(code)))
    assert info.value.codes == [code]
    assert info.value.tid == "t-9"
    assert info.value.details["may_have_processed"] is True


def test_the_delivery_survives_the_idempotency_store():
    delivery = interpret(answer(uuid=UUID, dcs_region="6", tid="t", errors=errors(309)))
    assert Delivery.from_dict(json.loads(json.dumps(delivery.to_dict()))) == delivery


def resolved(**fields):
    values = {"mid": MID, "region_id": 9, "region_host": "usw2.demdex.net", "region_source": "amcv"}
    return ResolvedIdentity(**{**values, **fields})


def test_the_answer_teaches_the_uuid():
    learned = learned_identity(resolved(), Delivery(status="sent", uuid=UUID, dcs_region=9), "acme.demdex.net")
    assert learned is not None
    assert (learned.uuid, learned.region_id, learned.region_source) == (UUID, 9, "amcv")


def test_nothing_new_teaches_nothing():
    assert learned_identity(resolved(uuid=UUID), Delivery(status="sent", uuid=UUID, dcs_region=9), "x") is None


def test_a_region_from_the_partner_alias_is_a_server_side_region():
    alias = resolved(region_id=None, region_host="acme.demdex.net", region_source="partner")
    learned = learned_identity(alias, Delivery(status="sent", dcs_region=7), "acme.demdex.net")
    assert learned is not None
    assert (learned.region_id, learned.region_host, learned.region_source) == (7, "use.demdex.net", "partner")


def test_an_opt_out_code_teaches_the_opt_out():
    learned = learned_identity(resolved(), Delivery(status="discarded", codes=[171]), "acme.demdex.net")
    assert learned is not None
    assert learned.opted_out is True
    assert learned_identity(resolved(), Delivery(status="discarded", codes=[311]), "acme.demdex.net") is None

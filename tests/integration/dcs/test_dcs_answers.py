"""How answers are read: body and X-Error codes, refusals, malformed bodies, logs."""

from __future__ import annotations

import logging

import pytest

from aam_dcs.dcs.http import DcsClient
from aam_dcs.dcs.query import DcsRequest, declared_id_value
from aam_dcs.errors import DcsBadResponse, DcsRejected
from tests.support.http_server import Reply, ScriptedServer

pytestmark = pytest.mark.integration

JSON = [("d_rtbd", "json"), ("d_jsonv", "1")]
UUID = "07955261652886032950143702505894272138"


def lookup(client: DcsClient) -> DcsRequest:
    return DcsRequest.event(client.settings, [*JSON, ("d_uuid", UUID), ("d_cts", "2")], region_id=9)


def test_a_full_answer(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(
        Reply.json(
            {
                "stuff": [{"cn": "aam_seg", "cv": "segs=14612,14623", "ttl": 30, "dmn": "aam-api.com"}],
                "uuid": UUID,
                "dcs_region": "9",
                "traits": [420020],
                "segments": [984263, "985264"],
                "tid": "ss3OTqPiQp0=",
            }
        )
    )
    response = client.send(lookup(client))

    assert response.uuid == UUID
    assert response.dcs_region == 9
    assert response.segments == ["984263", "985264"]
    assert response.stuff[0].cv == "segs=14612,14623"
    assert response.tid == "ss3OTqPiQp0="


def test_x_error_header_codes_are_merged(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(Reply.json({"uuid": UUID, "errors": [{"code": 309, "msg": "x"}]}, headers={"X-Error": "310,309"}))
    response = client.send(lookup(client))
    assert response.codes == [309, 310]
    assert [w.code for w in response.warnings] == [309, 310]


@pytest.mark.parametrize(
    ("codes", "flag"), [([171], "opted_out"), ([199], "blocked"), ([306], "blocked"), ([311], "dropped")]
)
def test_discarding_codes_come_back_to_the_caller(
    client: DcsClient, server: ScriptedServer, codes: list[int], flag: str
) -> None:
    server.enqueue(Reply.json({"errors": [{"code": code, "msg": "m"} for code in codes]}))
    response = client.send(lookup(client))
    assert getattr(response, flag)
    assert response.discarded


def test_invalid_codes_in_the_body_are_a_refusal(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(Reply.json({"errors": [{"code": 102, "msg": "Invalid AAM ID"}, {"code": 309}], "tid": "T1d="}))
    with pytest.raises(DcsRejected) as info:
        client.send(lookup(client))

    assert info.value.codes == [102, 309]
    assert info.value.tid == "T1d="
    assert info.value.http_status == 502
    assert len(server.requests) == 1


def test_invalid_codes_in_the_header_are_a_refusal(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(Reply.json({}, headers={"X-Error": "1"}))
    with pytest.raises(DcsRejected) as info:
        client.send(lookup(client))
    assert info.value.codes == [1]


def test_id_service_refusal(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(
        Reply.json(
            {
                "d_mid": None,
                "error_msg": "bad mid",
                "error_message": [{"code": 101, "msg": "Invalid marketing cloud passed in"}],
            }
        )
    )
    with pytest.raises(DcsRejected) as info:
        client.send_id(DcsRequest.id_call(client.settings, [("d_ver", "2"), *JSON, ("d_mid", "x")]))
    assert info.value.codes == [101]


def test_id_service_opt_out_is_an_answer(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(Reply.json({"d_mid": "1", "d_optout": ["global"], "id_sync_ttl": "3600", "ibs": [{"id": 1}]}))
    answer = client.send_id(DcsRequest.id_call(client.settings, [("d_ver", "2"), *JSON]))
    assert answer.opted_out
    assert answer.id_sync_ttl == 3600


@pytest.mark.parametrize(
    "reply",
    [
        Reply.text(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff", content_type="image/gif"),
        Reply.text('fn({"uuid": "1", "tid": "JsOnP="})', content_type="application/javascript"),
        Reply.text('{"uuid": "1", "tid": "TrUnC="', content_type="application/json"),
        Reply.text("[]", content_type="application/json"),
        Reply.text("<html>oops</html>", content_type="text/html"),
    ],
)
def test_bodies_that_are_not_a_json_object(client: DcsClient, server: ScriptedServer, reply: Reply) -> None:
    server.enqueue(reply)
    with pytest.raises(DcsBadResponse) as info:
        client.send(lookup(client))
    assert info.value.retryable
    assert len(server.requests) == 1
    if b"tid" in reply.body:
        assert info.value.tid in ("JsOnP=", "TrUnC=")


def test_logs_carry_no_ids(client: DcsClient, server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    secret_cid = declared_id_value(123, "crm-user-4711")
    signal = DcsRequest.event(
        client.settings, [*JSON, ("d_uuid", UUID), ("d_cid", secret_cid), ("c_x", "1")], region_id=9
    )
    server.enqueue(
        Reply.json({"uuid": UUID, "tid": "t="}),
        Reply(status=503),  # urllib3 logs a warning with the URL on connection retries; status retries too
        Reply.json({"uuid": UUID, "errors": [{"code": 102}]}),
        Reply.reset_connection(),
        Reply.json({"uuid": UUID}),
    )
    caplog.set_level(logging.DEBUG)
    client.send(signal)
    with pytest.raises(DcsRejected):
        client.send(signal)
    client.send(lookup(client))

    assert caplog.records
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        assert UUID not in text
        assert "crm-user-4711" not in text

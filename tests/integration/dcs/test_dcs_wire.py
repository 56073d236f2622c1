"""What reaches the server: the query byte for byte, hosts, headers, method and body."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aam_dcs.dcs.http import DEFAULT_USER_AGENT, DcsClient
from aam_dcs.dcs.query import DcsRequest, declared_id_value
from aam_dcs.errors import PayloadTooLarge
from tests.support.http_server import Reply, ScriptedServer

pytestmark = pytest.mark.integration

JSON = [("d_rtbd", "json"), ("d_jsonv", "1")]


def test_every_special_character_is_encoded_once(client: DcsClient, server: ScriptedServer) -> None:
    params = [
        *JSON,
        ("d_uuid", "07955261652886032950143702505894272138"),
        ("d_orgid", "ABC123@AdobeOrg"),
        ("c_phrase", "a b&c=d"),
        ("c_pct", "100%"),
        ("c_plus", "1+1"),
        ("c_utf8", "Zürich 日本"),
        ("c_list", "m,l"),
        ("d_cid", declared_id_value(123, "a&b=c d%+", 1)),
        ("d_cid_ic", declared_id_value("crm", "ü@x.io")),
    ]
    client.send(DcsRequest.event(client.settings, params, region_id=9))

    (received,) = server.requests
    assert received.method == "GET"
    assert received.path == "/event"
    assert received.raw_query == (
        "d_rtbd=json&d_jsonv=1&d_uuid=07955261652886032950143702505894272138&d_orgid=ABC123%40AdobeOrg"
        "&c_phrase=a%20b%26c%3Dd&c_pct=100%25&c_plus=1%2B1&c_utf8=Z%C3%BCrich%20%E6%97%A5%E6%9C%AC"
        "&c_list=m%2Cl&d_cid=123%01a%26b%3Dc%20d%25%2B%011&d_cid_ic=crm%01%C3%BC%40x.io"
    )
    assert received.query_pairs() == params
    assert received.body == b""


@pytest.mark.parametrize(
    ("region_id", "forwarded_host"),
    [
        (9, "usw2.demdex.net"),
        (6, "irl1.demdex.net"),
        (12, "ind1.demdex.net"),
        (5, "acme.demdex.net"),
        (None, "acme.demdex.net"),
    ],
)
def test_region_host_or_partner_alias(
    client: DcsClient, server: ScriptedServer, region_id: int | None, forwarded_host: str
) -> None:
    client.send(DcsRequest.event(client.settings, [*JSON, ("d_uuid", "1")], region_id=region_id))

    (received,) = server.requests
    assert received.header("Host") == "acme.demdex.net"
    assert received.header("X-Forwarded-Host") == forwarded_host
    assert received.header_values("Host") == ["acme.demdex.net"]


def test_id_call_host(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(Reply.json({"d_mid": "04512783304617290021837465019283746501", "dcs_region": 7}))
    answer = client.send_id(DcsRequest.id_call(client.settings, [("d_ver", "2"), *JSON, ("d_orgid", "A@AdobeOrg")]))

    (received,) = server.requests
    assert received.path == "/id"
    assert received.raw_query == "d_ver=2&d_rtbd=json&d_jsonv=1&d_orgid=A%40AdobeOrg"
    assert received.header("Host") == "dpm.demdex.net"
    assert received.header("X-Forwarded-Host") == "dpm.demdex.net"
    assert answer.d_mid == "04512783304617290021837465019283746501"
    assert answer.dcs_region == 7


def test_configured_id_service_host(make_client: Callable[..., DcsClient], server: ScriptedServer) -> None:
    client = make_client(id_service_host="acme.demdex.net")
    client.send_id(DcsRequest.id_call(client.settings, [("d_ver", "2"), *JSON]))
    assert server.requests[0].header("Host") == "acme.demdex.net"


def test_no_cookie_is_ever_sent(client: DcsClient, server: ScriptedServer) -> None:
    server.enqueue(
        Reply.json(
            {"uuid": "1"},
            headers=[("Set-Cookie", "demdex=11111; Domain=127.0.0.1; Path=/"), ("Set-Cookie", "dextp=1; Path=/")],
        ),
        Reply.json({"d_mid": "2"}, headers={"Set-Cookie": "demdex=22222; Path=/"}),
    )
    client.send(DcsRequest.event(client.settings, [*JSON, ("d_uuid", "1")], region_id=9))
    client.send_id(DcsRequest.id_call(client.settings, [("d_ver", "2"), *JSON]))
    client.send(DcsRequest.event(client.settings, [*JSON, ("d_uuid", "3")], region_id=None))

    assert len(server.requests) == 3
    for received in server.requests:
        assert received.header_values("Cookie") == []


def test_forwarded_user_agent_and_referer(client: DcsClient, server: ScriptedServer) -> None:
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
    client.send(DcsRequest.event(client.settings, JSON, region_id=9, user_agent=ua, referer="https://shop.example/p"))
    client.send(DcsRequest.event(client.settings, JSON, region_id=9))

    forwarded, default = server.requests
    assert forwarded.header("User-Agent") == ua
    assert forwarded.header("Referer") == "https://shop.example/p"
    assert default.header("User-Agent") == DEFAULT_USER_AGENT
    assert default.header("Referer") is None


def test_large_calls_switch_to_a_form_post(client: DcsClient, server: ScriptedServer) -> None:
    params = [*JSON, ("d_uuid", "1"), *[(f"c_k{i}", "välue & more " * 10) for i in range(40)]]
    request = DcsRequest.event(client.settings, params, region_id=9)
    assert request.method == "POST"
    client.send(request)

    (received,) = server.requests
    assert received.method == "POST"
    assert received.path == "/event"
    assert received.raw_query == ""
    assert received.header("Content-Type") == "application/x-www-form-urlencoded"
    assert received.header("Content-Length") == str(len(request.query))
    assert received.body == request.query.encode()
    assert received.form_pairs() == params


def test_calls_past_32_kb_never_leave(client: DcsClient, server: ScriptedServer) -> None:
    with pytest.raises(PayloadTooLarge):
        DcsRequest.event(client.settings, [*JSON, ("c_big", "x" * 40_000)], region_id=9)
    assert server.requests == []


def test_connections_are_kept_alive_and_reused(client: DcsClient, server: ScriptedServer) -> None:
    for uuid in ("1", "2", "3"):
        client.send(DcsRequest.event(client.settings, [*JSON, ("d_uuid", uuid)], region_id=9))
    ports = {received.client_port for received in server.requests}
    assert len(server.requests) == 3
    assert len(ports) == 1

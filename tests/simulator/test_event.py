"""/event: response shape, IDs, pixel, POST, size limits, declared-ID decoding and links."""

from __future__ import annotations

import base64
import re

from tests.simulator.helpers import ORG, cid

MAX_INT64 = 9223372036854775807


def _assert_aam_id(value: str) -> None:
    assert re.fullmatch(r"[0-9]{38}", value), value
    assert int(value[:19]) <= MAX_INT64
    assert int(value[19:]) <= MAX_INT64


def test_event_without_ids_mints_a_uuid_and_answers_the_documented_shape(client):
    result = client.event("")
    assert result.status == 200
    assert result.headers["Content-Type"] == "application/json"
    body = result.json()
    assert list(body) == ["stuff", "uuid", "dcs_region", "tid"]
    assert body["stuff"] == []
    assert body["dcs_region"] == 9
    _assert_aam_id(body["uuid"])
    assert len(body["tid"]) == 12
    assert body["tid"].endswith("=")
    assert len(base64.b64decode(body["tid"])) == 8
    assert "errors" not in body
    assert result.headers.get("X-Error") is None
    assert client.event("").json()["uuid"] != body["uuid"]


def test_d_uuid_addresses_the_same_profile(sim, client):
    uuid = client.event("c_category=tents").json()["uuid"]
    again = client.event(f"d_uuid={uuid}&c_category=tents").json()
    assert again["uuid"] == uuid
    profile = sim.profile(uuid)
    assert profile["calls"] == 2
    assert profile["traits"]["1001"]["count"] == 2


def test_a_client_supplied_uuid_is_accepted_as_is(sim, client):
    uuid = "0" * 19 + "1" * 19
    assert client.event(f"d_uuid={uuid}").json()["uuid"] == uuid
    assert sim.profile(uuid)["home_region"] == 9


def test_d_mid_maps_to_one_uuid_per_mid(sim, client):
    mid = "12345678901234567890123456789012345678"
    org = ORG.replace("@", "%40")
    first = client.event(f"d_mid={mid}&d_orgid={org}").json()["uuid"]
    second = client.event(f"d_mid={mid}&d_orgid={org}").json()["uuid"]
    other = client.event(f"d_mid={'9' * 38}&d_orgid={org}").json()["uuid"]
    assert first == second != other
    assert sim.profile(first)["mids"] == [mid]


def test_without_d_rtbd_json_the_answer_is_a_pixel_and_the_call_still_counts(sim, client):
    uuid = "1234567890123456789" * 2
    result = client.event(f"d_uuid={uuid}&c_category=tents", json_response=False)
    assert result.status == 200
    assert result.headers["Content-Type"] == "image/gif"
    assert result.body.startswith(b"GIF89a")
    assert len(result.body) < 64
    assert "1001" in sim.profile(uuid)["traits"]
    assert sim.calls()[-1]["response"]["pixel"] is True


def test_pixel_answers_still_carry_x_error(client):
    result = client.event("d_uuid=123", json_response=False)
    assert result.headers["Content-Type"] == "image/gif"
    assert result.x_error == [102]


def test_post_form_body_is_read_like_a_query(sim, client):
    result = client.event("c_category=tents&d_cts=2", method="POST")
    body = result.json()
    assert body["traits"] == [1001]
    call = sim.calls()[-1]
    assert call["method"] == "POST"
    assert call["body"] == "d_rtbd=json&d_jsonv=1&c_category=tents&d_cts=2"
    assert ["c_category", "tents"] in call["params"]
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_post_with_another_content_type_is_refused(client):
    result = client.event("c_category=tents", method="POST", headers={"Content-Type": "application/json"})
    assert result.status == 415


def test_get_url_over_8k_gets_414_and_at_8k_is_served(sim, client):
    prefix = "/event?d_rtbd=json&c_pad="
    fits = prefix + "x" * (8192 - len(prefix))
    assert len(fits) == 8192
    headers = {"Host": "acme.demdex.net", "X-Forwarded-Host": "usw2.demdex.net"}
    assert client.request("GET", fits, headers=headers).status == 200
    too_long = client.request("GET", fits + "x", headers=headers)
    assert too_long.status == 414
    assert sim.calls()[-1]["status"] == 414
    assert sim.stats()["profiles"] == 1


def test_post_body_over_32k_gets_413_and_at_32k_is_served(sim, client):
    prefix = "d_rtbd=json&c_pad="
    fits = prefix + "x" * (32768 - len(prefix))
    headers = {
        "Host": "acme.demdex.net",
        "X-Forwarded-Host": "usw2.demdex.net",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert client.request("POST", "/event", headers=headers, body=fits).status == 200
    too_big = client.request("POST", "/event", headers=headers, body=fits + "x")
    assert too_big.status == 413
    assert sim.stats()["profiles"] == 1


def test_declared_id_parts_are_decoded_exactly(sim, client):
    uid = "a+b c&d=e%f/é"
    result = client.event([("d_cid", cid(123, uid, 1)), ("d_cid_ic", cid("loyalty", "L-1"))])
    body = result.json()
    assert "errors" not in body
    declared = {(d["data_source"], d["id"], d["auth_state"]) for d in sim.profile(body["uuid"])["declared_ids"]}
    assert declared == {("123", uid, 1), ("loyalty", "L-1", 0)}
    call = sim.calls()[-1]
    assert "d_cid=123%01a%2Bb%20c%26d%3De%25f%2F%C3%A9%011" in call["query"]
    assert ["d_cid", f"123\x01{uid}\x011"] in call["params"]


def test_plus_in_a_query_is_a_space_under_form_rules(sim, client):
    client.event("c_note=a+b&d_cid=123%01x+y")
    params = sim.calls()[-1]["params"]
    assert ["c_note", "a b"] in params
    assert ["d_cid", "123\x01x y"] in params


def test_declared_id_links_to_the_profile_and_resolves_later(sim, client):
    uuid = client.event([("d_cid", cid(123, "crm-42"))]).json()["uuid"]
    assert client.event([("d_cid", cid(123, "crm-42"))]).json()["uuid"] == uuid
    # the integration code of data source 123 is the same namespace
    assert client.event([("d_cid_ic", cid("crm", "crm-42"))]).json()["uuid"] == uuid
    assert client.event([("d_cid", cid(456, "crm-42"))]).json()["uuid"] != uuid


def test_deprecated_dpid_dpuuid_pair_is_a_declared_id(sim, client):
    uuid = client.event("d_dpid=123&d_dpuuid=legacy-1").json()["uuid"]
    assert client.event([("d_cid", cid(123, "legacy-1"))]).json()["uuid"] == uuid


def test_demdex_cookie_identifies_the_device_like_the_real_dcs(sim, client):
    """A client that keeps a cookie jar merges its visitors: the simulator makes that visible."""
    first = client.event("")
    uuid = first.json()["uuid"]
    assert first.headers["Set-Cookie"].startswith(f"demdex={uuid};")
    merged = client.event("", headers={"Cookie": f"demdex={uuid}"})
    assert merged.json()["uuid"] == uuid
    assert sim.stats()["calls_with_cookie"] == 1
    assert sim.calls()[-1]["headers"]["Cookie"] == f"demdex={uuid}"


def test_demdex_cookie_can_be_turned_off(make_sim):
    from tests.simulator.helpers import Client

    sim = make_sim(set_demdex_cookie=False)
    assert Client(sim.url).event("").headers.get("Set-Cookie") is None

"""/id on dpm.demdex.net: minting, echo, errors, opt-out, declared-ID links."""

from __future__ import annotations

import re

import pytest

from tests.simulator.helpers import ORG, Client, cid

ORG_Q = ORG.replace("@", "%40")
MAX_INT64 = 9223372036854775807


def test_id_mints_a_mid_with_the_documented_fields(sim, client):
    result = client.id(f"d_ver=2&d_orgid={ORG_Q}&d_rtbd=json")
    assert result.status == 200
    assert result.headers["Content-Type"] == "application/json"
    body = result.json()
    assert set(body) == {"d_mid", "dcs_region", "id_sync_ttl", "d_blob", "d_ottl", "ibs", "subdomain", "tid"}
    mid = body["d_mid"]
    assert re.fullmatch(r"[0-9]{38}", mid)
    assert int(mid[:19]) <= MAX_INT64
    assert int(mid[19:]) <= MAX_INT64
    assert body["dcs_region"] == 7
    assert isinstance(body["dcs_region"], int)
    assert body["id_sync_ttl"] == 604800
    assert body["d_ottl"] == 7200
    assert body["ibs"] == []
    assert body["subdomain"] == "acme"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", body["d_blob"])
    assert len(body["d_blob"].encode()) <= 512
    assert len(body["tid"]) == 12
    assert client.id(f"d_ver=2&d_orgid={ORG_Q}").json()["d_mid"] != mid
    call = sim.calls()[0]
    assert (call["path"], call["target_host"], call["region"], call["mid"]) == ("/id", "dpm.demdex.net", 7, mid)


def test_id_answers_json_even_without_d_rtbd_and_ignores_d_cb(client):
    result = client.id(f"d_ver=2&d_orgid={ORG_Q}&d_cb=callback")
    assert result.headers["Content-Type"] == "application/json"
    assert result.body.startswith(b"{")
    assert result.json()["d_mid"]


def test_id_echoes_a_valid_mid(client):
    mid = "04512783304617290021837465019283746501"
    body = client.id(f"d_ver=2&d_orgid={ORG_Q}&d_mid={mid}").json()
    assert body["d_mid"] == mid
    assert body["d_blob"] == client.id(f"d_ver=2&d_orgid={ORG_Q}&d_mid={mid}").json()["d_blob"]


def test_id_service_region_is_configurable(make_sim):
    sim = make_sim(id_service_region=6)
    assert Client(sim.url).id(f"d_ver=2&d_orgid={ORG_Q}").json()["dcs_region"] == 6


def test_id_on_the_partner_alias_works_too(client):
    assert client.id(f"d_ver=2&d_orgid={ORG_Q}", target="acme.demdex.net").json()["dcs_region"] == 7


def test_id_with_an_invalid_mid_answers_null_with_101(client):
    result = client.id(f"d_ver=2&d_orgid={ORG_Q}&d_mid=1234")
    body = result.json()
    assert body["d_mid"] is None
    assert body["error_msg"] == "Invalid marketing cloud id passed in 1234"
    assert [e["code"] for e in body["errors"]] == [101]
    assert result.x_error == [101]


@pytest.mark.parametrize("query", [f"d_orgid={ORG_Q}", f"d_ver=1&d_orgid={ORG_Q}"])
def test_id_requires_d_ver_2(client, query):
    body = client.id(query).json()
    assert body["d_mid"] is None
    assert "d_ver=2" in body["error_msg"]
    assert body["errors"][0]["code"] == 0


@pytest.mark.parametrize("query", ["d_ver=2", "d_ver=2&d_orgid=NOPE%40AdobeOrg"])
def test_id_requires_a_known_org(client, query):
    body = client.id(query).json()
    assert body["d_mid"] is None
    assert [e["code"] for e in body["errors"]] == [2]
    assert "d_orgid" in body["error_msg"]


def test_id_with_bad_encoding_gives_311(client):
    body = client.id(f"d_ver=2&d_orgid={ORG_Q}&x=%").json()
    assert body["d_mid"] is None
    assert [e["code"] for e in body["errors"]] == [311]


def test_opted_out_mid_gets_d_optout(client):
    configured = "22222222222222222222222222222222222171"
    body = client.id(f"d_ver=2&d_orgid={ORG_Q}&d_mid={configured}").json()
    assert body["d_optout"] == ["global"]
    assert body["d_mid"] == configured
    mid = client.id(f"d_ver=2&d_orgid={ORG_Q}").json()["d_mid"]
    assert "d_optout" not in client.id(f"d_ver=2&d_orgid={ORG_Q}&d_mid={mid}").json()
    client.optout(f"d_mid={mid}&d_orgid={ORG_Q}")
    assert client.id(f"d_ver=2&d_orgid={ORG_Q}&d_mid={mid}").json()["d_optout"] == ["global"]


def test_declared_ids_on_id_link_to_the_mid(sim, client):
    mid = client.id(f"d_ver=2&d_orgid={ORG_Q}").json()["d_mid"]
    body = client.id([("d_ver", "2"), ("d_orgid", ORG), ("d_mid", mid), ("d_cid_ic", cid("crm", "crm-99", 1))]).json()
    assert "errors" not in body
    by_cid = client.event([("d_cid", cid(123, "crm-99"))]).json()["uuid"]
    by_mid = client.event([("d_mid", mid), ("d_orgid", ORG)]).json()["uuid"]
    assert by_cid == by_mid
    profile = sim.profile(by_mid)
    assert profile["mids"] == [mid]
    assert profile["home_region"] == 7  # the link was made by /id, in the id-service region
    assert profile["declared_ids"][0]["id"] == "crm-99"


def test_declared_id_limits_apply_on_id(client):
    params = [("d_ver", "2"), ("d_orgid", ORG)] + [("d_cid", cid(5, f"x{i}")) for i in range(4)]
    body = client.id(params).json()
    assert [e["code"] for e in body["errors"]] == [310]
    assert body["d_mid"]

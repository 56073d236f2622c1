"""DCS error codes in HTTP 200 bodies and X-Error: 2, 101, 102, 311, 300/104, 301/309, 310, 171, 303/306/307."""

from __future__ import annotations

import pytest

from tests.simulator.helpers import ORG, Client, cid

UUID = "1234567890123456789" * 2
ORG_Q = ORG.replace("@", "%40")


def test_unknown_org_gives_error_2_and_drops_the_call(sim, client):
    result = client.event(f"d_mid={'5' * 38}&d_orgid=FFFFFFFFFFFFFFFFFFFFFFFF%40AdobeOrg&c_category=tents")
    assert result.status == 200
    assert result.error_codes == [2]
    assert result.x_error == [2]
    assert "FFFFFFFFFFFFFFFFFFFFFFFF@AdobeOrg" in result.json()["errors"][0]["msg"]
    assert "uuid" not in result.json()
    assert sim.stats()["profiles"] == 0


@pytest.mark.parametrize("bad", ["123", "1" * 37, "1" * 39, "a" * 38, "\u0661" * 38, "NONE", ""])
def test_invalid_d_mid_gives_101_and_is_ignored(sim, client, bad):
    result = client.event([("d_mid", bad), ("d_orgid", ORG)])
    assert result.error_codes == [101]
    assert result.x_error == [101]
    body = result.json()
    assert body["errors"][0]["msg"] == f"Invalid Experience Cloud id passed in {bad}"
    assert sim.profile(body["uuid"])["mids"] == []  # a new device, the bad MID not mapped


def test_invalid_d_uuid_gives_102_and_both_codes_ride_in_x_error(sim, client):
    result = client.event(f"d_uuid=123&d_mid=abc&d_orgid={ORG_Q}")
    assert sorted(result.error_codes) == [101, 102]
    assert sorted(result.x_error) == [101, 102]
    body = result.json()
    assert body["uuid"] != "123"
    assert body["errors"][0] == {"code": 102, "msg": "Invalid AAM ID passed in request 123"}


@pytest.mark.parametrize(
    "raw",
    [
        "c_category=tents&c_note=100%",
        "c_category=tents&c_note=%zz",
        "c_category=tents&c_note=%4",
        "c_category=tents&c_note=%e9",  # not UTF-8
        "c_category=tents&%=x",
    ],
)
def test_bad_percent_encoding_gives_311_and_the_request_is_ignored(sim, client, raw):
    result = client.event(f"d_uuid={UUID}&d_cts=2&{raw}")
    assert result.status == 200
    assert result.error_codes == [311]
    assert result.x_error == [311]
    body = result.json()
    assert body["errors"][0]["msg"] == "Request contains invalid parameters"
    assert "uuid" not in body
    assert "traits" not in body
    assert sim.profile(UUID) is None
    assert sim.calls()[-1]["params"] is None


def test_bad_percent_encoding_in_a_post_body_gives_311(sim, client):
    result = client.event(f"d_uuid={UUID}&c_category=tents&c_x=%G1", method="POST")
    assert result.error_codes == [311]
    assert sim.profile(UUID) is None


def test_311_also_applies_to_the_pixel(client):
    result = client.event("c_x=%", json_response=False)
    assert result.headers["Content-Type"] == "image/gif"
    assert result.x_error == [311]


def test_more_than_ten_declared_ids_gives_301_once_and_309_per_dropped(sim, client):
    params = [("d_cid", cid(1000 + i, f"user-{i}")) for i in range(12)]
    result = client.event(params)
    codes = result.error_codes
    assert codes == [301, 309, 309]
    errors = result.json()["errors"]
    assert errors[0]["msg"] == "Maximum number of customer ids exceeded. Maximum allowed is 10. Found is 12."
    assert "user-10" in errors[1]["msg"]
    assert "user-11" in errors[2]["msg"]
    declared = sim.profile(result.json()["uuid"])["declared_ids"]
    assert sorted(d["id"] for d in declared) == sorted(f"user-{i}" for i in range(10))


def test_more_than_three_ids_in_one_namespace_gives_310_per_dropped(sim, client):
    params = [("d_cid", cid(123, f"c{i}")) for i in range(4)] + [("d_cid_ic", cid("crm", "c4"))]
    result = client.event(params)
    assert result.error_codes == [310, 310]
    assert [e["msg"].split()[2] for e in result.json()["errors"]] == ["c3", "c4"]
    declared = sim.profile(result.json()["uuid"])["declared_ids"]
    assert sorted(d["id"] for d in declared) == ["c0", "c1", "c2"]


def test_invalid_declared_ids_give_300_and_104_when_all_are_invalid(client):
    result = client.event([("d_cid", "123"), ("d_cid", cid("abc", "x")), ("d_cid", cid(123, "x", 7))])
    assert result.error_codes == [300, 300, 300, 104]
    mixed = client.event([("d_cid", "123"), ("d_cid", cid(123, "ok"))])
    assert mixed.error_codes == [300]


# --- opt-out -------------------------------------------------------------------------------------------


OPTED_UUID = "11111111111111111111111111111111111171"  # opted out in rules.toml
OPTED_MID = "22222222222222222222222222222222222171"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        (f"d_uuid={OPTED_UUID}", OPTED_UUID),
        (f"d_mid={OPTED_MID}&d_orgid={ORG_Q}", OPTED_MID),
        ("d_cid=123%01opted-out-customer", "opted-out-customer"),
    ],
)
def test_configured_opt_outs_get_171_instead_of_uuid_and_nothing_is_stored(sim, client, params, named):
    result = client.event(f"{params}&c_category=tents")
    body = result.json()
    assert result.error_codes == [171]
    assert body["errors"][0]["msg"] == f"Encountered opt out tag for id {named}"
    assert "uuid" not in body
    assert body["stuff"] == []
    assert sim.stats()["profiles"] == 0


def test_opt_out_by_uuid_through_demoptout(sim, client):
    uuid = client.event("c_category=tents").json()["uuid"]
    answer = client.optout(f"d_uuid={uuid}")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "image/gif"
    assert "demdex=NOTARGET" in answer.headers["Set-Cookie"]
    result = client.event(f"d_uuid={uuid}&c_category=tents")
    assert result.error_codes == [171]
    assert "uuid" not in result.json()
    assert sim.profile(uuid)["traits"]["1001"]["count"] == 1  # the opted-out call stored nothing
    assert sim.profile(uuid)["opted_out"] is True


def test_opt_out_by_mid_and_org_through_demoptout(client):
    mid = "3" * 38
    assert client.event(f"d_mid={mid}&d_orgid={ORG_Q}").status == 200
    json_answer = client.optout(f"d_mid={mid}&d_orgid={ORG_Q}&d_rtbd=json", path="/demoptout")
    assert json_answer.error_codes == [171]
    assert client.event(f"d_mid={mid}&d_orgid={ORG_Q}").error_codes == [171]


def test_opt_out_by_declared_id_covers_the_last_linked_device(sim, client):
    uuid = client.event("d_cid=123%01crm-7&c_category=tents").json()["uuid"]
    client.optout("d_cid=123%01crm-7")
    assert client.event("d_cid=123%01crm-7").error_codes == [171]
    assert client.event(f"d_uuid={uuid}").error_codes == [171]
    assert sim.profile(uuid)["opted_out"] is True


def test_ids_that_resolve_to_an_opted_out_device_get_171(sim, client):
    mid = "6" * 38
    uuid = client.event(f"d_mid={mid}&d_orgid={ORG_Q}&d_cid=456%01member-1").json()["uuid"]
    client.optout(f"d_uuid={uuid}")
    by_mid = client.event(f"d_mid={mid}&d_orgid={ORG_Q}&c_category=tents")
    by_cid = client.event("d_cid=456%01member-1&c_category=tents")
    assert by_mid.error_codes == by_cid.error_codes == [171]
    assert by_mid.json()["errors"][0]["msg"].endswith(uuid)
    assert sim.profile(uuid)["traits"] == {}


def test_global_opt_out_with_the_demdex_cookie(client):
    uuid = client.event("").json()["uuid"]
    client.request("GET", "/demoptout.jpg", headers={"Host": "www.demdex.net", "Cookie": f"demdex={uuid}"})
    assert client.event(f"d_uuid={uuid}").error_codes == [171]
    assert client.event("", headers={"Cookie": "demdex=NOTARGET"}).error_codes == [171]


# --- denylisting ---------------------------------------------------------------------------------------


def test_a_device_id_called_too_often_is_denylisted_for_good(make_sim):
    sim = make_sim(denylist_threshold_per_minute=5)
    client = Client(sim.url)
    for _ in range(5):
        assert "errors" not in client.event(f"d_uuid={UUID}&c_category=tents").json()
    blocked = client.event(f"d_uuid={UUID}&c_category=tents")
    assert blocked.error_codes == [306, 307]
    assert blocked.json()["errors"][0]["msg"] == f"Blocked declared device id {UUID}"
    assert blocked.json()["errors"][1]["msg"] == f"Blocked profile operation for {UUID}"
    assert "uuid" not in blocked.json()
    assert client.event(f"d_uuid={UUID}").error_codes == [306, 307]
    profile = sim.profile(UUID)
    assert profile["traits"]["1001"]["count"] == 5  # the blocked calls' data was dropped
    assert profile["denylisted"] is True
    assert f"uuid:{UUID}" in sim.stats()["denylisted"]


def test_a_denylisted_mid_gives_306_and_307(make_sim):
    sim = make_sim(denylisted_mids=("4" * 38,))
    result = Client(sim.url).event(f"d_mid={'4' * 38}&d_orgid={ORG_Q}")
    assert result.error_codes == [306, 307]
    assert sim.stats()["profiles"] == 0


def test_a_denylisted_customer_id_gives_303_and_only_it_is_dropped(make_sim):
    sim = make_sim(denylist_threshold_per_minute=2)
    client = Client(sim.url)
    for _ in range(2):
        client.event("d_cid=123%01bot")
    alone = client.event("d_cid=123%01bot")
    assert alone.error_codes == [303, 307]
    assert "uuid" not in alone.json()
    with_device = client.event(f"d_uuid={UUID}&d_cid=123%01bot&d_cid=123%01human")
    assert with_device.error_codes == [303]
    assert with_device.json()["uuid"] == UUID
    assert [d["id"] for d in sim.profile(UUID)["declared_ids"]] == ["human"]


def test_ids_below_the_threshold_are_never_denylisted(make_sim):
    sim = make_sim(denylist_threshold_per_minute=10)
    client = Client(sim.url)
    assert all("errors" not in client.event(f"d_uuid={UUID}").json() for _ in range(10))
    assert sim.stats()["denylisted"] == []

"""Profile store: home region, cross-region sync delay, links, private signals never stored."""

from __future__ import annotations

import json
import time

from tests.simulator.helpers import Client, cid

DELAY = 0.4


def test_other_regions_see_a_profile_only_after_the_sync_delay(make_sim):
    sim = make_sim(sync_delay_seconds=DELAY)
    client = Client(sim.url)
    uuid = client.event("c_category=tents&d_cts=2", target="usw2.demdex.net").json()["uuid"]
    home = client.event(f"d_uuid={uuid}&d_cts=2", target="usw2.demdex.net").json()
    assert home["segments"] == [2001]
    away = client.event(f"d_uuid={uuid}&d_cts=2", target="irl1.demdex.net").json()
    assert (away["dcs_region"], away["traits"], away["segments"], away["stuff"]) == (6, [], [], [])
    view = sim.profile(uuid)
    assert view["home_region"] == 9
    assert view["regions"]["6"]["traits"] == {}
    assert set(view["regions"]["9"]["traits"]) == {"1001"}
    time.sleep(DELAY + 0.1)
    synced = client.event(f"d_uuid={uuid}&d_cts=2", target="irl1.demdex.net").json()
    assert synced["segments"] == [2001]
    assert synced["stuff"][0]["cv"] == "segs=2001"
    assert sim.profile(uuid)["home_region"] == 9


def test_writes_in_another_region_travel_back_with_the_same_delay(make_sim):
    sim = make_sim(sync_delay_seconds=DELAY)
    client = Client(sim.url)
    uuid = client.event("", target="usw2.demdex.net").json()["uuid"]
    client.event(f"d_uuid={uuid}&c_category=shoes", target="sae.demdex.net")
    assert client.event(f"d_uuid={uuid}&d_cts=2", target="usw2.demdex.net").json()["traits"] == []
    assert sim.profile(uuid)["regions"]["4"]["traits"]["1002"]["by_region"] == {"4": 1}
    time.sleep(DELAY + 0.1)
    assert client.event(f"d_uuid={uuid}&d_cts=2", target="usw2.demdex.net").json()["traits"] == [1002]


def test_declared_id_links_also_wait_for_the_sync(make_sim):
    sim = make_sim(sync_delay_seconds=DELAY)
    client = Client(sim.url)
    early_uuid = client.event([("d_cid", cid(123, "early"))], target="usw2.demdex.net").json()["uuid"]
    early = client.event([("d_cid", cid(123, "early"))], target="irl1.demdex.net").json()["uuid"]
    assert early != early_uuid  # region 6 does not know the link yet
    late_uuid = client.event([("d_cid", cid(123, "late"))], target="usw2.demdex.net").json()["uuid"]
    time.sleep(DELAY + 0.1)
    assert client.event([("d_cid", cid(123, "late"))], target="irl1.demdex.net").json()["uuid"] == late_uuid


def test_zero_delay_means_every_region_sees_everything_at_once(client):
    uuid = client.event("c_category=tents", target="tyo3.demdex.net").json()["uuid"]
    assert client.event(f"d_uuid={uuid}&d_cts=2", target="ind1.demdex.net").json()["segments"] == [2001]


def test_private_signals_are_evaluated_but_never_stored_or_logged(sim, client):
    secret = "secret-value@example.com"
    result = client.event(f"c_category=shoes&p_age=29&p_email={secret.replace('@', '%40')}&c_color=red&d_cts=2")
    body = result.json()
    assert body["traits"] == [1002, 1003]  # p_age < 30 realized trait 1003
    assert body["segments"] == [2002]
    uuid = body["uuid"]
    profile = sim.profile(uuid)
    stored_signals = profile["signals"]["9"]
    assert set(stored_signals) == {"c_category", "c_color"}
    assert stored_signals["c_category"]["values"] == ["shoes"]
    # the admin views (HTTP) hold no p_ value either
    admin_profile = Client(sim.url).admin("GET", f"profiles/{uuid}").body.decode()
    admin_calls = Client(sim.url).admin("GET", "calls").body.decode()
    for dump in (json.dumps(profile), admin_profile, admin_calls, json.dumps(sim.calls())):
        assert secret not in dump
        assert "secret-value" not in dump
    for dump in (json.dumps(profile), admin_profile):
        assert "p_age" not in dump
        assert "p_email" not in dump
    call = sim.calls()[-1]
    assert ["p_age", "<private>"] in call["params"]
    assert ["p_email", "<private>"] in call["params"]
    assert "p_age=<private>" in call["query"]
    assert "p_email=<private>" in call["query"]
    assert "29" not in [v for _k, v in call["params"]]


def test_private_values_in_a_post_body_are_redacted_too(sim, client):
    client.event("c_category=tents&p_ssn=123-45-6789", method="POST")
    call = sim.calls()[-1]
    assert "123-45-6789" not in json.dumps(call)
    assert call["body"].endswith("p_ssn=<private>")


def test_realized_traits_are_counted_with_last_seen(sim, client):
    uuid = client.event("c_category=tents").json()["uuid"]
    time.sleep(0.01)
    client.event(f"d_uuid={uuid}&c_category=tents&c_color=blue")
    traits = sim.profile(uuid)["traits"]
    assert traits["1001"]["count"] == 2
    assert traits["1001"]["last_seen"] > traits["1001"]["first_seen"]
    assert traits["1005"]["count"] == 1
    assert sim.profile(uuid)["segments"] == [2001, 2003]


def test_profile_admin_endpoint(sim, client):
    uuid = client.event("d_cid=123%01p-1%011&c_category=tents").json()["uuid"]
    admin = Client(sim.url)
    view = admin.admin("GET", f"profiles/{uuid}").json()
    assert view["uuid"] == uuid
    assert view["home_region"] == 9
    assert view["declared_ids"][0] | {"linked_at": None} == {
        "param": "d_cid",
        "data_source": "123",
        "namespace": "123",
        "id": "p-1",
        "auth_state": 1,
        "region": 9,
        "linked_at": None,
    }
    assert set(view["regions"]) == {"3", "4", "6", "7", "8", "9", "11", "12"}
    only_six = admin.admin("GET", f"profiles/{uuid}?region=6").json()
    assert set(only_six["regions"]) == {"6"}
    assert only_six["regions"]["6"]["host"] == "irl1.demdex.net"
    assert admin.admin("GET", f"profiles/{'0' * 38}").status == 404
    assert sim.profile("0" * 38) is None

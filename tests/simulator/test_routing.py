"""Target host and partner alias: regions, GSLB, misrouting (421), errors 100 and 1."""

from __future__ import annotations

import pytest

from local.dcs_simulator import REGION_HOSTS
from tests.simulator.helpers import ORG, Client


@pytest.mark.parametrize(("region", "host"), sorted(REGION_HOSTS.items()))
def test_regional_host_from_x_forwarded_host_sets_dcs_region(sim, client, region, host):
    result = client.event("c_category=tents", target=host)
    assert result.status == 200
    body = result.json()
    assert body["dcs_region"] == region
    assert result.headers["DCS"].startswith(host)
    call = sim.calls()[-1]
    assert (call["target_host"], call["region"], call["target_kind"]) == (host, region, "regional")
    assert sim.profile(body["uuid"])["home_region"] == region


def test_the_region_table_is_the_documented_one():
    assert REGION_HOSTS == {
        3: "apse.demdex.net",
        4: "sae.demdex.net",
        6: "irl1.demdex.net",
        7: "use.demdex.net",
        8: "apse2.demdex.net",
        9: "usw2.demdex.net",
        11: "tyo3.demdex.net",
        12: "ind1.demdex.net",
    }


def test_partner_alias_lands_in_the_gslb_region(client):
    assert client.event("", target="acme.demdex.net").json()["dcs_region"] == 9


def test_gslb_region_is_configurable(make_sim):
    sim = make_sim(gslb_region=6)
    assert Client(sim.url).event("", target="acme.demdex.net").json()["dcs_region"] == 6


def test_without_x_forwarded_host_the_host_is_the_target(sim, client):
    result = client.event("", target=None, host="acme.demdex.net")
    assert result.json()["dcs_region"] == 9
    assert sim.calls()[-1]["target_host"] == "acme.demdex.net"


def test_target_host_is_normalized(sim, client):
    result = client.event("", target="USW2.demdex.net:443")
    assert result.json()["dcs_region"] == 9
    assert sim.calls()[-1]["target_host"] == "usw2.demdex.net"


@pytest.mark.parametrize(
    "target",
    ["evil.example.com", "usw2.demdex.net.evil.com", "demdex.net", "unknown.demdex.net", "127.0.0.1", "a.b.demdex.net"],
)
def test_a_target_that_is_not_a_known_demdex_host_gets_421(sim, client, target):
    result = client.event(f"d_uuid={'1' * 38}&c_category=tents", target=target)
    assert result.status == 421
    body = result.json()
    assert body["error"] == "misdirected_request"
    assert body["target_host"] == target
    assert "usw2.demdex.net" in body["known_hosts"]
    call = sim.calls()[-1]
    assert (call["status"], call["target_host"], call["region"]) == (421, target, None)
    assert ["c_category", "tents"] in call["params"]  # what would have leaked is visible in the log
    assert sim.stats()["profiles"] == 0


def test_a_direct_call_without_host_override_is_misrouted(sim, client):
    """No X-Forwarded-Host, Host = the simulator's own address: the client forgot the demdex host."""
    result = client.request("GET", "/event?d_rtbd=json")
    assert result.status == 421
    assert sim.calls()[-1]["target_host"] == "127.0.0.1"


def test_host_header_that_is_not_a_demdex_name_gives_error_100(sim, client):
    result = client.event(f"d_uuid={'1' * 38}&c_category=tents", host="127.0.0.1")
    assert result.status == 200
    body = result.json()
    assert result.error_codes == [100]
    assert result.x_error == [100]
    assert "uuid" not in body
    assert body["stuff"] == []
    assert sim.stats()["profiles"] == 0


def test_no_host_header_at_all_gives_error_100(client):
    result = client.request(
        "GET", "/event?d_rtbd=json", headers={"X-Forwarded-Host": "usw2.demdex.net"}, omit_host=True
    )
    assert result.status == 200
    assert result.error_codes == [100]


def test_unknown_partner_alias_gives_error_1(sim, client):
    result = client.event("c_category=tents", host="someoneelse.demdex.net")
    assert result.status == 200
    assert result.error_codes == [1]
    assert result.json()["errors"][0]["msg"] == "Could not find config for hostname: someoneelse.demdex.net"
    assert "uuid" not in result.json()
    assert sim.stats()["profiles"] == 0


def test_regional_name_in_host_header_is_not_a_partner(client):
    """A client that forgot to send the alias as Host: the regional name has no partner config."""
    result = client.event("", host="usw2.demdex.net")
    assert result.error_codes == [1]


def test_id_service_host_answers_the_id_service_region(client):
    body = client.id(f"d_ver=2&d_orgid={ORG.replace('@', '%40')}").json()
    assert body["dcs_region"] == 7


def test_unknown_path_on_a_demdex_host_is_404(client):
    assert client.request("GET", "/nope", headers={"Host": "acme.demdex.net"}).status == 404

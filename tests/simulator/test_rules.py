"""Trait rules, segment expressions, d_sid, stuff / d_cts / dests outputs and rule replacement."""

from __future__ import annotations

import re

import pytest

from local.dcs_simulator import RuleError
from local.dcs_simulator.rules import parse_segment_rule, parse_trait_rule
from tests.simulator.helpers import Client

# --- parsers ---------------------------------------------------------------------------------------------


def test_segment_precedence_is_not_then_and_then_or():
    assert parse_segment_rule("1 OR 2 AND NOT 3") == ("or", ("trait", 1), ("and", ("trait", 2), ("not", ("trait", 3))))
    assert parse_segment_rule("(1 or 2) and not (3)") == (
        "and",
        ("or", ("trait", 1), ("trait", 2)),
        ("not", ("trait", 3)),
    )


def test_trait_rule_parses_each_operator():
    assert parse_trait_rule('c_a == "x y"') == ("cmp", "c_a", "==", "x y")
    assert parse_trait_rule("p_age < 30") == ("cmp", "p_age", "<", 30.0)
    assert parse_trait_rule("n >= 1.5") == ("cmp", "n", ">=", 1.5)
    assert parse_trait_rule("c_c contains 'blue'") == ("cmp", "c_c", "contains", "blue")
    assert parse_trait_rule("c_a != x AND NOT b <= -2") == (
        "and",
        ("cmp", "c_a", "!=", "x"),
        ("not", ("cmp", "b", "<=", -2.0)),
    )


@pytest.mark.parametrize(
    "rule", ["1 AND", "AND 1", "1 2", "(1", "1)", "", "c_x", "NOT", "__import__('os')", "1 + 2", "x"]
)
def test_bad_segment_rules_are_rejected(rule):
    with pytest.raises(RuleError):
        parse_segment_rule(rule)


@pytest.mark.parametrize(
    "rule",
    ["c_x ==", "c_x < abc", "c_x ~ 1", "== 1", "c_x == 1 c_y == 2", "__import__('os').system('x')", "c_x == 1 OR"],
)
def test_bad_trait_rules_are_rejected(rule):
    with pytest.raises(RuleError):
        parse_trait_rule(rule)


# --- operators over HTTP ---------------------------------------------------------------------------------

OPERATOR_TRAITS = [
    {"id": 3001, "rule": 'c_k == "a"'},
    {"id": 3002, "rule": 'c_k != "a"'},
    {"id": 3003, "rule": "num < 10"},
    {"id": 3004, "rule": "num <= 10"},
    {"id": 3005, "rule": "num > 10"},
    {"id": 3006, "rule": "num >= 10"},
    {"id": 3007, "rule": 'c_k contains "ell"'},
    {"id": 3008, "rule": "p_score > 50"},
    {"id": 3009, "rule": "num == 10"},
    {"id": 3010, "rule": 'c_tags contains "sale"'},
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("c_k=a", {3001}),
        ("c_k=b", {3002}),
        ("c_k=a,b", {3001, 3002}),
        ("c_k=a&c_k=hello", {3001, 3002, 3007}),
        ("num=9", {3003, 3004}),
        ("num=10", {3004, 3006, 3009}),
        ("num=10.0", {3004, 3006, 3009}),
        ("num=11", {3005, 3006}),
        ("num=abc", set()),
        ("num=5,20", {3003, 3004, 3005, 3006}),
        ("p_score=51", {3008}),
        ("p_score=50", set()),
        ("k=a", set()),  # a plain key is not the c_ key
        ("c_tags=new,on-sale", {3010}),
        ("c_tags=new&c_tags=sale", {3010}),
        ("c_tags=new", set()),
        ('c_k="a"', {3001}),  # quoted string values as the DCS docs show them
        ("", set()),
    ],
)
def test_trait_operators_on_c_p_and_plain_keys(sim, client, query, expected):
    sim.set_rules({"traits": OPERATOR_TRAITS, "segments": []})
    body = client.event(f"{query}&d_cts=2" if query else "d_cts=2").json()
    assert set(body["traits"]) == expected
    assert sim.calls()[-1]["realized_traits"] == sorted(expected)


def test_header_signals_can_drive_traits(sim, client):
    sim.set_rules({"traits": [{"id": 3100, "rule": 'h_referer contains "search"'}], "segments": []})
    body = client.event("d_cts=2", headers={"Referer": "https://search.example/?q=tents"}).json()
    assert body["traits"] == [3100]


# --- the demo rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "traits", "segments"),
    [
        ("c_category=tents", [1001], [2001]),
        ("c_category=shoes&p_age=25", [1002, 1003], [2002]),
        ("c_category=shoes&p_age=35", [1002], []),
        ("c_cart_value=150", [1004], [2003]),
        ("c_cart_value=99.5", [], []),
        ("c_color=navy-blue", [1005], [2003]),  # 1005 AND NOT 1002
        ("c_color=blue&c_category=shoes", [1002, 1005], []),  # NOT 1002 fails
        ("c_category=tents&visit_number=3", [1001, 1006], [2001, 2004]),
        ("c_category=backpacks&c_page_type=sale&visit_number=2", [1006], []),
        ("c_category=backpacks&visit_number=2", [1006, 1007], [2004]),
    ],
)
def test_demo_rules(client, query, traits, segments):
    body = client.event(f"{query}&d_cts=2").json()
    assert body["traits"] == traits
    assert body["segments"] == segments


def test_segments_use_stored_traits_plus_this_calls(sim, client):
    uuid = client.event("c_category=shoes&d_cts=2").json()["uuid"]
    later = client.event(f"d_uuid={uuid}&p_age=20&d_cts=2").json()
    assert later["traits"] == [1002, 1003]
    assert later["segments"] == [2002]
    assert later["stuff"] == [{"cn": "aam_seg", "cv": "segs=2002", "ttl": 30, "dmn": "aam-api.com"}]
    lookup = client.event(f"d_uuid={uuid}&d_cts=2").json()  # no signals: a pure lookup
    assert lookup["segments"] == [2002]


def test_d_sid_realizes_trait_ids_directly(sim, client):
    body = client.event("d_sid=1001,1006&d_sid=42&d_cts=2").json()
    assert body["traits"] == [42, 1001, 1006]
    assert body["segments"] == [2001, 2004]
    assert set(sim.profile(body["uuid"])["traits"]) == {"42", "1001", "1006"}


def test_stuff_lists_mapped_values_of_current_segments(client):
    body = client.event("c_category=tents&c_cart_value=500").json()
    assert body["stuff"] == [{"cn": "aam_seg", "cv": "segs=2001,2003", "ttl": 30, "dmn": "aam-api.com"}]
    assert "segments" not in body
    assert "traits" not in body
    assert client.event("c_category=none").json()["stuff"] == []


def test_d_cts_1_answers_legacy_segment_ids(sim, client):
    sim.set_rules({"segments": [{"id": 2001, "rule": "1001", "legacy_id": 91001}]})
    assert client.event("c_category=tents&d_cts=1").json()["segments"] == [91001]
    assert client.event("c_category=tents&d_cts=2").json()["segments"] == [2001]


def test_d_dst_adds_url_destinations(client):
    body = client.event("c_category=tents&c_cart_value=100&d_dst=1").json()
    uuid = body["uuid"]
    (dest,) = body["dests"]
    assert re.fullmatch(r"601-\d{10}", dest["id"])
    assert dest["y"] == "img"
    assert dest["c"].startswith("http://ads.example.com/aam?segs=campers%3Bbigspenders&uid=" + uuid + "&r=")
    assert dest["e"].startswith("https://ads.example.com/aam?segs=campers%3Bbigspenders&uid=" + uuid)
    assert client.event("c_category=shoes&d_dst=1").json()["dests"] == []
    assert "dests" not in client.event("c_category=tents").json()


def test_cookie_destination_format_is_configurable(sim, client):
    sim.set_rules(
        {
            "destinations": {
                "cookie": [
                    {
                        "id": 9,
                        "cookie_name": "segs_cookie",
                        "key": "s",
                        "separator": ";",
                        "ttl_days": 7,
                        "domain": "example.org",
                        "mappings": {"2003": "big spender", "2001": "camper"},
                    }
                ],
                "url": [],
            }
        }
    )
    body = client.event("c_category=tents&c_cart_value=100&d_dst=1").json()
    assert body["stuff"] == [{"cn": "segs_cookie", "cv": "s=big%20spender;camper", "ttl": 7, "dmn": "example.org"}]
    assert body["dests"] == []


def test_rules_can_be_replaced_over_http(sim):
    client = Client(sim.url)
    rules = {"traits": [{"id": 7, "rule": 'c_x == "y"'}], "segments": [{"id": 8, "rule": "7"}]}
    answer = client.admin("POST", "rules", rules)
    assert answer.status == 200
    assert answer.json()["traits"] == [{"id": 7, "name": "", "rule": 'c_x == "y"'}]
    assert answer.json()["destinations"]["cookie"][0]["cookie_name"] == "aam_seg"  # not given: kept
    body = client.event("c_x=y&c_category=tents&d_cts=2").json()
    assert body["traits"] == [7]
    assert body["segments"] == [8]
    assert client.admin("GET", "rules").json()["segments"] == [{"id": 8, "name": "", "rule": "7", "legacy_id": 8}]


@pytest.mark.parametrize(
    "rules",
    [
        {"traits": [{"id": 1, "rule": "c_x =="}]},
        {"segments": [{"id": 1, "rule": "1 AND"}]},
        {"traits": [{"id": 1, "rule": "c_x == 1", "oops": True}]},
        {"traits": [{"id": 1, "rule": "a == 1"}, {"id": 1, "rule": "b == 1"}]},
        {"destinations": {"cookie": [{"id": 1, "cookie_name": "x"}]}},
        {"whatever": []},
    ],
)
def test_invalid_rules_are_refused_and_the_old_ones_stay(sim, rules):
    client = Client(sim.url)
    answer = client.admin("POST", "rules", rules)
    assert answer.status == 400
    assert answer.json()["error"] == "invalid"
    assert client.event("c_category=tents&d_cts=2").json()["segments"] == [2001]

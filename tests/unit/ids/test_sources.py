from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aam_dcs.config import Settings
from aam_dcs.ids.cookies import kndctr_cookie_name
from aam_dcs.ids.models import CustomerId, IdentityInput, ResolvedIdentity, parse_identity
from aam_dcs.ids.sources import IdServiceResult, StoredIdentity, needs_id_service, resolve_identity
from tests.unit.ids import strategies as gen

ORG = gen.ORG_ID
AMCV_NAME = f"AMCV_{quote(ORG, safe='')}"
MID_A = "04512783304617290021837465019283746501"  # request
MID_B = "11111111111111111111111111111111111111"  # AMCV
MID_C = "22222222222222222222222222222222222222"  # other cookies
MID_D = "33333333333333333333333333333333333333"  # store
MID_E = "44444444444444444444444444444444444444"  # /id
UUID_A = "06151304227769720433039235178204449977"
UUID_B = "55555555555555555555555555555555555555"
NOW = 1_727_400_000

SETTINGS = Settings(partner="acme", org_id=ORG)
WITH_DEFAULT = Settings(partner="acme", org_id=ORG, default_region=6)


def resolve(data=None, settings=SETTINGS, **kwargs) -> ResolvedIdentity:
    return resolve_identity(parse_identity(data or {}), settings, now=NOW, **kwargs)


def amcv(mid=MID_B, region=None, optout=None, extra="") -> str:
    value = f"MCMID|{mid}"
    if region is not None:
        value += f"|MCAAMLH-1728004800|{region}"
    if optout is not None:
        value += f"|MCOPTOUT-1727407200s|{optout}"
    return quote(value + extra, safe="")


def test_nothing_known_goes_to_the_partner_alias():
    result = resolve()
    assert result == ResolvedIdentity(
        mid=None,
        uuid=None,
        region_id=None,
        region_host="acme.demdex.net",
        region_source="partner",
        blob=None,
        opted_out=False,
        customer_ids=[],
        id_source=None,
    )


def test_explicit_request_beats_everything():
    result = resolve(
        {"mid": MID_A, "region_id": 3, "cookies": f"{AMCV_NAME}={amcv(region=9)}"},
        stored=StoredIdentity(mid=MID_D, region_id=7),
        id_service=IdServiceResult(mid=MID_E, region_id=7),
    )
    assert (result.mid, result.id_source, result.region_id, result.region_source) == (MID_A, "request", 3, "request")
    assert result.region_host == "apse.demdex.net"


def test_request_mid_with_amcv_region():
    result = resolve({"mid": MID_A, "amcv": amcv(region=9)})
    assert (result.mid, result.id_source, result.region_id, result.region_source) == (MID_A, "request", 9, "amcv")


def test_dcs_response_uuid_and_region():
    result = resolve({"dcs_response": {"uuid": UUID_A, "dcs_region": 9}, "amcv": amcv(region=3)})
    assert (result.uuid, result.mid, result.id_source) == (UUID_A, MID_B, "dcs_response")
    assert (result.region_id, result.region_source, result.region_host) == (9, "dcs_response", "usw2.demdex.net")


@pytest.mark.parametrize("region", ["9", 9])
def test_dcs_region_as_string_or_int_and_d_region_alias(region):
    for key in ("dcs_region", "d_region"):
        result = resolve({"dcs_response": {key: region}})
        assert (result.region_id, result.region_source) == (9, "dcs_response")


def test_dcs_response_171_instead_of_uuid_means_opted_out():
    result = resolve(
        {"amcv": amcv(region=9), "dcs_response": {"errors": [{"code": 171, "msg": "Encountered opt out tag"}]}}
    )
    assert result.opted_out
    assert (result.mid, result.uuid, result.region_id) == (MID_B, None, 9)  # IDs found are still returned


def test_unknown_dcs_region_falls_back():
    result = resolve({"dcs_response": {"dcs_region": 5}})
    assert (result.region_id, result.region_source, result.region_host) == (None, "partner", "acme.demdex.net")


@pytest.mark.parametrize("encoded_name", [True, False])
def test_amcv_inside_cookies(encoded_name):
    name = gen.amcv_name(ORG, encoded=encoded_name)
    result = resolve({"cookies": f"x=1; {name}={amcv(region=9)}; y=2"})
    assert (result.mid, result.id_source, result.region_id, result.region_source) == (MID_B, "amcv", 9, "amcv")


def test_explicit_amcv_wins_over_the_cookie_field_by_field():
    cookie = amcv(MID_C, region=9, extra="|MCAAMB-1|cookieblob")
    result = resolve({"amcv": amcv(region=None), "cookies": f"{AMCV_NAME}={cookie}"})
    assert (result.mid, result.region_id, result.blob) == (MID_B, 9, "cookieblob")


def test_web_sdk_amcv_with_only_mcmid():
    result = resolve({"cookies": f"{AMCV_NAME}=MCMID|{MID_B}"})
    assert (result.mid, result.id_source) == (MID_B, "amcv")
    assert (result.region_id, result.region_source, result.region_host) == (None, "partner", "acme.demdex.net")


def test_expired_amcv_region_is_still_used():
    result = resolve({"amcv": quote(f"MCMID|{MID_B}|MCAAMLH-1|11|MCAAMB-1|blob", safe="")})
    assert (result.region_id, result.region_host, result.blob) == (11, "tyo3.demdex.net", "blob")


def test_amcv_T_means_nothing():
    result = resolve({"amcv": "T"})
    assert (result.mid, result.id_source, result.region_source) == (None, None, "partner")


def test_unknown_amcv_region_goes_to_the_partner_alias():
    result = resolve({"amcv": amcv(region=5)})
    assert (result.mid, result.region_id, result.region_source, result.region_host) == (
        MID_B,
        None,
        "partner",
        "acme.demdex.net",
    )


@pytest.mark.parametrize(
    "optout",
    [
        pytest.param("global", id="global"),
        pytest.param("global,ns1", id="list"),
    ],
)
def test_amcv_opt_out(optout):
    result = resolve({"amcv": amcv(region=9, optout=optout)})
    assert result.opted_out
    assert (result.mid, result.region_id) == (MID_B, 9)


def test_amcv_opt_out_with_expired_expiry():
    result = resolve({"amcv": quote(f"MCMID|{MID_B}|MCOPTOUT-1s|global", safe="")})
    assert result.opted_out


def test_amcv_optout_none_is_not_opted_out():
    assert not resolve({"amcv": amcv(optout="NONE")}).opted_out


def test_duplicate_amcv_cookies_pick_the_valid_mid():
    header = f"{AMCV_NAME}=MCMID%7CNONE%7CMCAAMLH-9999999999%7C3; {AMCV_NAME}={amcv(region=9)}"
    result = resolve({"cookies": header})
    assert (result.mid, result.region_id) == (MID_B, 9)


@pytest.mark.parametrize(
    ("cookie", "field", "value"),
    [
        (f"s_ecid=MCMID%7C{MID_C}", "mid", MID_C),
        (f"{kndctr_cookie_name(ORG)}={gen.kndctr_value(MID_C)}", "mid", MID_C),
        (f"adobe_mc={quote(f'TS={NOW - 10}|MCMID={MID_C}|MCORGID={ORG}', safe='')}", "mid", MID_C),
        (f"aam_uuid={UUID_B}", "uuid", UUID_B),
        (f"aam_did={UUID_B}", "uuid", UUID_B),
    ],
)
def test_other_first_party_carriers(cookie, field, value):
    result = resolve({"cookies": f"x=1; {cookie}"})
    assert getattr(result, field) == value
    assert result.id_source == "cookie"


def test_stale_adobe_mc_is_ignored():
    stale = quote(f"TS={NOW - 301}|MCMID={MID_C}|MCORGID={ORG}", safe="")
    assert resolve({"cookies": f"adobe_mc={stale}"}).mid is None


def test_amcv_beats_other_cookies_and_s_ecid_beats_adobe_mc():
    fresh = quote(f"TS={NOW}|MCMID={MID_D}|MCORGID={ORG}", safe="")
    both = resolve({"cookies": f"s_ecid=MCMID%7C{MID_C}; {AMCV_NAME}={amcv()}; adobe_mc={fresh}"})
    assert (both.mid, both.id_source) == (MID_B, "amcv")
    no_amcv = resolve({"cookies": f"adobe_mc={fresh}; s_ecid=MCMID%7C{MID_C}"})
    assert (no_amcv.mid, no_amcv.id_source) == (MID_C, "cookie")


def test_store_after_cookies():
    stored = StoredIdentity(mid=MID_D, uuid=UUID_B, region_id=8, blob="storedblob")
    from_store = resolve(stored=stored)
    assert (from_store.mid, from_store.uuid, from_store.id_source) == (MID_D, UUID_B, "store")
    assert (from_store.region_id, from_store.region_source, from_store.blob) == (8, "store", "storedblob")
    with_cookie = resolve({"cookies": f"s_ecid=MCMID%7C{MID_C}"}, stored=stored)
    assert (with_cookie.mid, with_cookie.uuid, with_cookie.id_source) == (MID_C, UUID_B, "cookie")


def test_store_values_are_revalidated():
    stored = StoredIdentity(mid="NONE", uuid="bad", region_id=5, blob="not a blob")
    result = resolve(stored=stored)
    assert (result.mid, result.uuid, result.region_id, result.blob) == (None, None, None, None)


def test_store_opt_out_counts():
    assert resolve({"mid": MID_A}, stored=StoredIdentity(opted_out=True)).opted_out


def test_id_service_last_for_ids():
    result = resolve(id_service=IdServiceResult(mid=MID_E, region_id=7, blob="idblob"))
    assert (result.mid, result.id_source, result.blob) == (MID_E, "id_service", "idblob")
    assert (result.region_id, result.region_source, result.region_host) == (7, "id_service", "use.demdex.net")


def test_cookie_region_beats_id_service_region():
    result = resolve({"amcv": amcv(region=9)}, id_service=IdServiceResult(mid=MID_B, region_id=7))
    assert (result.region_id, result.region_source) == (9, "amcv")


def test_default_region_beats_id_service_region():
    result = resolve(settings=WITH_DEFAULT, id_service=IdServiceResult(mid=MID_E, region_id=7))
    assert (result.mid, result.region_id, result.region_source, result.region_host) == (
        MID_E,
        6,
        "default",
        "irl1.demdex.net",
    )


def test_visitor_region_beats_default_region():
    result = resolve({"amcv": amcv(region=9)}, settings=WITH_DEFAULT)
    assert (result.region_id, result.region_source) == (9, "amcv")


def test_default_region_without_anything_else():
    result = resolve(settings=WITH_DEFAULT)
    assert (result.region_id, result.region_source, result.region_host) == (6, "default", "irl1.demdex.net")


@pytest.mark.parametrize(
    ("region_source", "settings", "expected"),
    [
        (None, WITH_DEFAULT, (8, "store")),  # unknown origin: treated as the visitor's
        ("amcv", WITH_DEFAULT, (8, "store")),
        ("id_service", WITH_DEFAULT, (6, "default")),  # a server-side region loses to the default
        ("id_service", SETTINGS, (8, "store")),
    ],
)
def test_stored_region_ranks_by_where_it_came_from(region_source, settings, expected):
    result = resolve(settings=settings, stored=StoredIdentity(mid=MID_D, region_id=8, region_source=region_source))
    assert (result.region_id, result.region_source) == expected


def test_fresh_id_service_region_beats_a_stored_server_side_region():
    result = resolve(
        stored=StoredIdentity(mid=MID_D, region_id=8, region_source="id_service"),
        id_service=IdServiceResult(region_id=7),
    )
    assert (result.region_id, result.region_source) == (7, "id_service")


def test_id_service_opt_out_counts():
    assert resolve(id_service=IdServiceResult(mid=MID_E, opted_out=True)).opted_out


def test_customer_ids_are_echoed_as_validated():
    result = resolve({"customer_ids": [{"integration_code": "crm", "id": "abc", "auth_state": "authenticated"}]})
    assert result.customer_ids == [CustomerId(integration_code="crm", id="abc", auth_state=1)]


def test_explicit_cookie_list_overrides_the_field():
    from aam_dcs.ids.cookies import parse_cookie_header

    jar = parse_cookie_header(f"{AMCV_NAME}={amcv(MID_C)}")
    result = resolve_identity(IdentityInput(cookies=f"{AMCV_NAME}={amcv()}"), SETTINGS, cookies=jar, now=NOW)
    assert result.mid == MID_C


def test_now_defaults_to_the_clock():
    import time

    fresh = quote(f"TS={int(time.time())}|MCMID={MID_C}|MCORGID={ORG}", safe="")
    assert resolve_identity(IdentityInput(cookies=f"adobe_mc={fresh}"), SETTINGS).mid == MID_C


# --- needs_id_service ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mint", "expected"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"mid": MID_A}, True, False),
        ({"dcs_response": {"uuid": UUID_A}}, True, False),
        ({"region_id": 9}, True, True),  # a region alone is not a user ID
        ({"dcs_response": {"errors": [{"code": 171}]}}, True, False),  # opted out: never mint
    ],
)
def test_needs_id_service(data, mint, expected):
    assert needs_id_service(resolve(data), mint) is expected


# --- property ----------------------------------------------------------------------------------


@given(case=gen.amcv_cases(), encoded=st.booleans(), before=gen.other_cookies(), after=gen.other_cookies())
def test_resolution_recovers_a_generated_amcv_cookie(case, encoded, before, after):
    header = "; ".join([*before, f"{gen.amcv_name(ORG, encoded=encoded)}={case.raw}", *after])
    result = resolve({"cookies": header})
    expected = case.expected
    mid = expected["MCMID"].value if "MCMID" in expected else None
    region = int(expected["MCAAMLH"].value) if "MCAAMLH" in expected else None
    assert result.mid == mid
    assert result.id_source == ("amcv" if mid else None)
    assert result.region_id == region
    assert result.region_source == ("amcv" if region else "partner")
    assert result.opted_out == ("MCOPTOUT" in expected and expected["MCOPTOUT"].value != "NONE")


@given(st.text(max_size=8192))
def test_resolution_never_raises_on_any_cookie_header(text):
    resolve_identity(IdentityInput(cookies=text, amcv=text[:4096]), SETTINGS, now=NOW)

"""No input makes the bundle call a host outside the region table, the partner alias and the ID service."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aam_dcs.config import settings_from_env
from aam_dcs.dcs.http import DcsClient
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.regions import REGION_HOSTS
from aam_dcs.errors import InvalidRequest
from aam_dcs.ids.models import IdentityInput
from aam_dcs.ids.resolver import IdentityResolver
from aam_dcs.ids.sources import StoredIdentity
from aam_dcs.store.memory import InMemoryProfileStore
from aam_dcs.store.profiles import mid_key

ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"
SETTINGS = settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG})
ALLOWED = {*REGION_HOSTS.values(), "acme.demdex.net"}

hostile_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["evil.example.com", "127.0.0.1", "169.254.169.254", "usw2.demdex.net.evil.com", "@evil", "%2F%2F"]
    ),
)
region_like = st.one_of(st.integers(-5, 10**6), hostile_text, st.none())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    amcv_region=region_like,
    dcs_region=region_like,
    cookie_tail=hostile_text,
    stored_region=st.one_of(st.integers(-5, 10**6), st.none()),
)
def test_the_resolved_host_is_always_a_known_demdex_host(amcv_region, dcs_region, cookie_tail, stored_region):
    store = InMemoryProfileStore()
    store.put_identity([mid_key(MID)], StoredIdentity(mid=MID, region_id=stored_region), 600)
    amcv = f"MCMID|{MID}|MCAAMLH-1728004800|{amcv_region}"
    data = {
        "amcv": amcv,
        "cookies": f"AMCV_{ORG}={amcv}; aam_uuid={cookie_tail}; s_ecid=MCMID%7C{cookie_tail}",
        "dcs_response": {"uuid": None, "dcs_region": dcs_region},
    }
    try:
        request = IdentityInput.model_validate(data)
    except ValueError:
        return  # refused as bad input: no call at all
    resolved = IdentityResolver(settings=SETTINGS, store=store).resolve(request)
    assert resolved.region_host in ALLOWED
    call = DcsRequest.event(SETTINGS, [("d_rtbd", "json"), ("d_mid", MID)], region_id=resolved.region_id)
    assert call.target_host in ALLOWED


@given(region=st.integers(-(10**9), 10**9))
def test_an_event_request_never_targets_a_host_outside_the_table(region):
    call = DcsRequest.event(SETTINGS, [("d_rtbd", "json")], region_id=region)
    assert call.target_host == REGION_HOSTS.get(region, "acme.demdex.net")


@given(host=hostile_text)
def test_the_client_refuses_an_event_call_to_any_other_host_before_the_network(host):
    if host in ALLOWED:
        return
    try:
        request = DcsRequest(path="/event", target_host=host, params=[("d_rtbd", "json")])
    except (ValueError, InvalidRequest):
        return  # not even a demdex host
    with pytest.raises(ValueError, match="may only call"):
        DcsClient(SETTINGS).send(request)

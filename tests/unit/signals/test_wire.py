"""The /event call of a send_signals request: parameter order, d_cts, and the masked dry-run URL."""

import pytest

from aam_dcs.errors import InvalidRequest
from aam_dcs.ids.models import CustomerId, ResolvedIdentity
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.wire import event_params, event_request, masked_query, masked_url
from tests.support.signals import MID, ORG, UUID, bundle_settings

CONSENT = {"gdpr": True, "gdpr_consent": "CPzHq4APzHq4A-_."}


def identity(**fields):
    values = {"mid": MID, "region_id": 9, "region_host": "usw2.demdex.net", "region_source": "amcv"}
    values.update(fields)
    return ResolvedIdentity(**values)


def test_params_come_in_the_documented_order():
    request = SendSignalsInput(signals={"c_color": "blue"}, trait_ids=[7, 8], consent=CONSENT)
    resolved = identity(uuid=UUID, blob="Zm9v", customer_ids=[CustomerId(data_source_id=123, id="abc", auth_state=1)])
    params = event_params(request, resolved, bundle_settings())
    assert params == [
        ("d_rtbd", "json"),
        ("d_jsonv", "1"),
        ("d_uuid", UUID),
        ("d_mid", MID),
        ("d_orgid", ORG),
        ("d_blob", "Zm9v"),
        ("d_cid", "123\x01abc\x011"),
        ("c_color", "blue"),
        ("d_sid", "7,8"),
        ("gdpr", "1"),
        ("gdpr_consent", CONSENT["gdpr_consent"]),
    ]


@pytest.mark.parametrize(
    ("source", "return_segments", "expected"), [("cts", True, True), ("cts", False, False), ("stuff", True, False)]
)
def test_d_cts_only_when_segments_are_asked_for_from_cts(source, return_segments, expected):
    request = SendSignalsInput(signals={"c_x": "1"}, return_segments=return_segments)
    params = event_params(request, identity(), bundle_settings(AAM_SEGMENT_SOURCE=source))
    assert (("d_cts", "2") in params) is expected


def test_nothing_to_send_is_refused_naming_signals():
    with pytest.raises(InvalidRequest) as info:
        event_params(SendSignalsInput(), identity(), bundle_settings())
    assert info.value.field == "signals"


def test_declared_ids_alone_are_data():
    request = SendSignalsInput(customer_ids=[{"integration_code": "crm", "id": "x"}])
    params = event_params(request, identity(customer_ids=request.customer_ids), bundle_settings())
    assert ("d_cid_ic", "crm\x01x\x010") in params


def test_the_call_goes_to_the_visitor_region_or_the_partner_alias():
    request = SendSignalsInput(signals={"c_x": "1"})
    assert event_request(request, identity(), bundle_settings()).target_host == "usw2.demdex.net"
    alias = identity(region_id=None, region_host="acme.demdex.net", region_source="partner")
    assert event_request(request, alias, bundle_settings()).target_host == "acme.demdex.net"


def test_dry_run_url_masks_every_identity_value_and_keeps_the_rest_exact():
    request = SendSignalsInput(signals={"c_q": "a&b=c%d+e f", "c_city": "Zürich"}, consent=CONSENT)
    resolved = identity(
        uuid=UUID,
        blob="Zm9v",
        customer_ids=[
            CustomerId(data_source_id=123, id="secret-crm-id", auth_state=1),
            CustomerId(integration_code="loyalty card", id="secret-2"),
        ],
    )
    url = masked_url(event_request(request, resolved, bundle_settings()))
    assert url == (
        "https://usw2.demdex.net/event?d_rtbd=json&d_jsonv=1&d_uuid=***&d_mid=***"
        "&d_orgid=0123456789ABCDEF01234567%40AdobeOrg&d_blob=***"
        "&d_cid=123%01***%011&d_cid_ic=loyalty%20card%01***%010"
        "&c_q=a%26b%3Dc%25d%2Be%20f&c_city=Z%C3%BCrich&gdpr=1&gdpr_consent=***"
    )
    for secret in (MID, UUID, "secret", "Zm9v", CONSENT["gdpr_consent"]):
        assert secret not in url


def test_the_masked_query_is_the_sent_query_where_nothing_is_masked():
    request = event_request(
        SendSignalsInput(signals={"c_q": "~!*'()é;/?:@&=+$,"}), identity(mid=None, uuid=UUID), bundle_settings()
    )
    sent = request.query.split("&")
    masked = masked_query(request.params).split("&")
    assert [a for a, b in zip(sent, masked, strict=True) if a != b] == [f"d_uuid={UUID}"]


def test_a_large_call_is_shown_as_the_post_form():
    request = SendSignalsInput(signals={f"c_k{i}": "v" * 1000 for i in range(9)})
    url = masked_url(event_request(request, identity(), bundle_settings()))
    assert url.startswith("POST https://usw2.demdex.net/event d_rtbd=json&d_jsonv=1&d_mid=***&")

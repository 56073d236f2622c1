from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aam_dcs.config import Settings
from aam_dcs.dcs.query import (
    GET_LIMIT_BYTES,
    POST_LIMIT_BYTES,
    DcsRequest,
    allowed_hosts,
    carries_data,
    declared_id_value,
    encode_params,
)
from aam_dcs.dcs.regions import REGION_HOSTS
from aam_dcs.errors import InvalidRequest, PayloadTooLarge
from tests.support.http_server import decode_pairs

JSON = [("d_rtbd", "json"), ("d_jsonv", "1")]


class TestEncodeParams:
    @pytest.mark.parametrize(
        ("value", "encoded"),
        [
            ("a b", "a%20b"),
            ("a+b", "a%2Bb"),
            ("a&b", "a%26b"),
            ("a=b", "a%3Db"),
            ("100%", "100%25"),
            ("%41", "%2541"),
            ("é", "%C3%A9"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
            ("x\x01y", "x%01y"),
            ("a/b?c#d", "a%2Fb%3Fc%23d"),
            ("ABC123@AdobeOrg", "ABC123%40AdobeOrg"),
            ("1,2,3", "1%2C2%2C3"),
            ("safe-_.~", "safe-_.~"),
        ],
    )
    def test_each_value_is_encoded_once_with_nothing_safe(self, value: str, encoded: str) -> None:
        assert encode_params([("k", value)]) == f"k={encoded}"

    def test_keys_repeat_in_order(self) -> None:
        assert encode_params([("c_a", "1"), ("c_a", "2"), ("d_sid", "3")]) == "c_a=1&c_a=2&d_sid=3"

    def test_empty(self) -> None:
        assert encode_params([]) == ""

    @given(st.lists(st.tuples(st.text(min_size=1), st.text())))
    def test_decoding_gives_back_the_originals(self, pairs: list[tuple[str, str]]) -> None:
        encoded = encode_params(pairs)
        assert encoded.isascii()
        assert decode_pairs(encoded) == pairs


class TestDeclaredIdValue:
    def test_parts_are_joined_raw_and_encoded_separately_by_the_single_pass(self) -> None:
        value = declared_id_value(123, "a&b=c d%", 1)
        assert value == "123\x01a&b=c d%\x011"
        assert encode_params([("d_cid", value)]) == "d_cid=123%01a%26b%3Dc%20d%25%011"

    def test_integration_code_without_auth_state(self) -> None:
        value = declared_id_value("crm", "user@example.com", None)
        assert encode_params([("d_cid_ic", value)]) == "d_cid_ic=crm%01user%40example.com"

    @pytest.mark.parametrize("auth_state", [0, 1, 2])
    def test_auth_states(self, auth_state: int) -> None:
        assert declared_id_value(1, "u", auth_state).endswith(f"\x01{auth_state}")

    def test_unknown_auth_state_is_refused(self) -> None:
        with pytest.raises(InvalidRequest) as info:
            declared_id_value(1, "u", 3)
        assert info.value.field == "customer_ids"

    @pytest.mark.parametrize(("namespace", "user_id"), [(1, ""), ("", "u"), (1, "a\x01b"), ("c\x01d", "u")])
    def test_empty_parts_and_separator_inside_a_part_are_refused(self, namespace: int | str, user_id: str) -> None:
        with pytest.raises(InvalidRequest) as info:
            declared_id_value(namespace, user_id)
        assert info.value.field == "customer_ids"


class TestSizeRule:
    def _request(self, value_length: int) -> DcsRequest:
        return DcsRequest(path="/event", target_host="usw2.demdex.net", params=[*JSON, ("c_x", "a" * value_length)])

    def _overhead(self) -> int:
        return len("/event?" + encode_params([*JSON, ("c_x", "")]))

    def test_get_up_to_exactly_8192_bytes(self) -> None:
        request = self._request(GET_LIMIT_BYTES - self._overhead())
        assert len(request.url_path) == GET_LIMIT_BYTES
        assert request.method == "GET"
        assert request.body is None
        assert request.url_path == f"/event?{request.query}"

    def test_form_post_one_byte_past(self) -> None:
        request = self._request(GET_LIMIT_BYTES - self._overhead() + 1)
        assert request.method == "POST"
        assert request.url_path == "/event"
        assert request.body == request.query.encode()

    def test_post_up_to_32768_bytes_of_body(self) -> None:
        body_overhead = self._overhead() - len("/event?")
        request = self._request(POST_LIMIT_BYTES - body_overhead)
        assert request.method == "POST"
        assert request.body is not None
        assert len(request.body) == POST_LIMIT_BYTES

    def test_refused_past_32768_bytes_naming_both_limits(self) -> None:
        body_overhead = self._overhead() - len("/event?")
        with pytest.raises(PayloadTooLarge) as info:
            self._request(POST_LIMIT_BYTES - body_overhead + 1)
        error = info.value
        assert error.http_status == 413
        assert error.field == "signals"
        assert "8192" in str(error.rule)
        assert "32768" in str(error.rule)
        assert error.details["size"] == POST_LIMIT_BYTES + 1

    def test_size_counts_encoded_bytes(self) -> None:
        # 'é' takes 6 bytes once encoded: %C3%A9
        length = (GET_LIMIT_BYTES - self._overhead()) // 6 + 1
        request = DcsRequest(path="/event", target_host="usw2.demdex.net", params=[*JSON, ("c_x", "é" * length)])
        assert request.method == "POST"


class TestDcsRequestShape:
    def test_params_become_an_immutable_tuple(self) -> None:
        params = [*JSON, ("d_uuid", "1")]
        request = DcsRequest(path="/event", target_host="usw2.demdex.net", params=params)
        params.append(("c_x", "late"))
        assert request.params == (*JSON, ("d_uuid", "1"))
        assert request.query == "d_rtbd=json&d_jsonv=1&d_uuid=1"

    @pytest.mark.parametrize(
        "host",
        [
            "example.com",
            "usw2.demdex.net.evil.com",
            "usw2.demdex.net/",
            "usw2.demdex.net:444",
            "user@usw2.demdex.net",
            "demdex.net",
            "USW2.demdex.net",
            "127.0.0.1",
        ],
    )
    def test_target_host_must_be_a_demdex_host(self, host: str) -> None:
        with pytest.raises(ValueError, match="target_host"):
            DcsRequest(path="/event", target_host=host, params=JSON)

    def test_unknown_path_is_refused(self) -> None:
        with pytest.raises(ValueError, match="path"):
            DcsRequest(path="/ibs", target_host="usw2.demdex.net", params=JSON)  # type: ignore[arg-type]

    def test_json_response_is_required(self) -> None:
        with pytest.raises(ValueError, match="d_rtbd=json"):
            DcsRequest(path="/event", target_host="usw2.demdex.net", params=[("d_uuid", "1")])

    def test_jsonp_is_refused(self) -> None:
        with pytest.raises(ValueError, match="d_cb"):
            DcsRequest(path="/event", target_host="usw2.demdex.net", params=[*JSON, ("d_cb", "fn")])

    @pytest.mark.parametrize("extra", [("c_color", "blue"), ("d_sid", "123"), ("d_cid", "1\x01u"), ("p_age", "3")])
    def test_an_event_with_data_cannot_claim_to_be_idempotent(self, extra: tuple[str, str]) -> None:
        with pytest.raises(ValueError, match="not idempotent"):
            DcsRequest(path="/event", target_host="usw2.demdex.net", params=[*JSON, extra], idempotent=True)

    def test_lone_surrogates_are_refused_as_bad_input(self) -> None:
        with pytest.raises(InvalidRequest) as info:
            DcsRequest(path="/event", target_host="usw2.demdex.net", params=[*JSON, ("c_x", "\ud800")])
        assert info.value.field == "signals"


class TestForwardedHeaders:
    @pytest.mark.parametrize("field", ["user_agent", "referer"])
    @pytest.mark.parametrize("bad", ["a\r\nCookie: demdex=1", "a\nb", "a\rb", "a\x00b", "a\tb", "a\x7fb", "a\u2028b"])
    def test_control_characters_are_refused_naming_the_field(self, field: str, bad: str) -> None:
        with pytest.raises(InvalidRequest) as info:
            DcsRequest(path="/event", target_host="usw2.demdex.net", params=JSON, **{field: bad})
        assert info.value.field == field
        assert info.value.http_status == 400

    def test_too_long_is_refused(self) -> None:
        with pytest.raises(PayloadTooLarge) as info:
            DcsRequest(path="/event", target_host="usw2.demdex.net", params=JSON, user_agent="a" * 2049)
        assert info.value.field == "user_agent"

    def test_ordinary_values_pass(self) -> None:
        ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari"
        request = DcsRequest(
            path="/event", target_host="usw2.demdex.net", params=JSON, user_agent=ua, referer="https://shop.example/é"
        )
        assert request.user_agent == ua


class TestBuilders:
    @pytest.mark.parametrize(("region_id", "host"), [(9, "usw2.demdex.net"), (6, "irl1.demdex.net")])
    def test_event_goes_to_the_region_host(self, settings: Settings, region_id: int, host: str) -> None:
        assert DcsRequest.event(settings, JSON, region_id=region_id).target_host == host

    @pytest.mark.parametrize("region_id", [None, 5, 0, 10, 99])
    def test_unknown_or_missing_region_falls_back_to_the_partner_alias(
        self, settings: Settings, region_id: int | None
    ) -> None:
        assert DcsRequest.event(settings, JSON, region_id=region_id).target_host == "acme.demdex.net"

    def test_event_without_data_is_idempotent(self, settings: Settings) -> None:
        request = DcsRequest.event(settings, [*JSON, ("d_uuid", "1"), ("d_cts", "2")], region_id=9)
        assert request.idempotent

    @pytest.mark.parametrize("extra", [("c_color", "blue"), ("d_sid", "123"), ("d_cid_ic", "crm\x01u"), ("x", "1")])
    def test_event_with_data_is_not_idempotent(self, settings: Settings, extra: tuple[str, str]) -> None:
        assert not DcsRequest.event(settings, [*JSON, extra], region_id=9).idempotent

    def test_id_call_goes_to_the_id_service_and_is_idempotent(self, settings: Settings) -> None:
        request = DcsRequest.id_call(settings, [("d_ver", "2"), ("d_rtbd", "json"), ("d_cid", "1\x01u")])
        assert request.path == "/id"
        assert request.target_host == "dpm.demdex.net"
        assert request.idempotent

    def test_id_call_uses_the_configured_id_host(self) -> None:
        settings = Settings(partner="acme", org_id="A@AdobeOrg", id_service_host="acme.demdex.net")
        assert DcsRequest.id_call(settings, JSON).target_host == "acme.demdex.net"


def test_allowed_hosts(settings: Settings) -> None:
    assert allowed_hosts(settings, "/event") == {*REGION_HOSTS.values(), "acme.demdex.net"}
    assert allowed_hosts(settings, "/id") == {"dpm.demdex.net"}


def test_carries_data() -> None:
    assert not carries_data([*JSON, ("d_uuid", "1"), ("d_mid", "2"), ("d_orgid", "o"), ("gdpr", "1")])
    assert carries_data([*JSON, ("c_a", "1")])


@given(st.lists(st.tuples(st.text(), st.text()), max_size=8))
def test_encoding_is_exactly_urlencode_with_nothing_safe(pairs: list[tuple[str, str]]) -> None:
    try:
        expected = urlencode(pairs, quote_via=quote, safe="")
    except UnicodeEncodeError:  # lone surrogates: refused either way
        with pytest.raises(UnicodeEncodeError):
            encode_params(pairs)
        return
    assert encode_params(pairs) == expected

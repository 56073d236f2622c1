from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aam_dcs.dcs.codes import ErrorClass
from aam_dcs.dcs.response import (
    DcsErrorItem,
    DcsResponse,
    IdServiceResponse,
    parse_error_header,
    parse_event_response,
    parse_id_response,
)
from aam_dcs.errors import DcsBadResponse


def event(payload: Any, x_error: str | None = None) -> DcsResponse:
    return parse_event_response(json.dumps(payload).encode(), x_error=x_error)


def id_answer(payload: Any, x_error: str | None = None) -> IdServiceResponse:
    return parse_id_response(json.dumps(payload).encode(), x_error=x_error)


class TestDocumentedShapes:
    def test_minimal(self) -> None:
        response = event(
            {"stuff": [], "uuid": "22920112968019678612904394744954398990", "dcs_region": 7, "tid": "31Z="}
        )
        assert response.uuid == "22920112968019678612904394744954398990"
        assert response.dcs_region == 7
        assert response.tid == "31Z="
        assert response.stuff == []
        assert response.codes == []
        assert not response.discarded

    def test_traits_and_segments_become_strings(self) -> None:
        response = event(
            {
                "uuid": "07955261652886032950143702505894272138",
                "traits": [420020, "5421506"],
                "segments": [984263, 985264],
            }
        )
        assert response.uuid == "07955261652886032950143702505894272138"  # leading zero kept
        assert response.traits == ["420020", "5421506"]
        assert response.segments == ["984263", "985264"]

    def test_stuff_and_dests(self) -> None:
        response = event(
            {
                "stuff": [{"cn": "aam_seg", "cv": "segs=14612,14623", "ttl": 30, "dmn": "aam-api.com"}],
                "dests": [{"id": "123-1354180261", "y": "img", "c": "https://partner.example/px?s=14612"}],
                "uuid": "1",
                "dcs_region": 9,
                "tid": "t",
            }
        )
        assert response.stuff[0].cn == "aam_seg"
        assert response.stuff[0].cv == "segs=14612,14623"
        assert response.stuff[0].ttl == 30
        assert response.stuff[0].dmn == "aam-api.com"
        assert response.dests[0].id == "123-1354180261"
        assert response.dests[0].y == "img"
        assert response.dests[0].e is None


class TestTolerance:
    @pytest.mark.parametrize(
        ("payload", "region", "raw"),
        [
            ({"dcs_region": "9"}, 9, "9"),
            ({"dcs_region": 9}, 9, 9),
            ({"d_region": 6}, 6, 6),
            ({"region": "11"}, 11, "11"),
            ({"dcs_region": 5}, None, 5),
            ({"dcs_region": "abc"}, None, "abc"),
            ({"dcs_region": True}, None, None),
            ({"dcs_region": [9]}, None, None),
            ({}, None, None),
        ],
    )
    def test_region_in_every_known_shape(self, payload: dict[str, Any], region: int | None, raw: object) -> None:
        response = event(payload)
        assert response.dcs_region == region
        assert response.dcs_region_raw == raw

    def test_u_is_an_alias_of_uuid(self) -> None:
        assert event({"u": "0123"}).uuid == "0123"

    @pytest.mark.parametrize("empty", ["", "<null>", None])
    def test_empty_uuid_is_absent(self, empty: str | None) -> None:
        assert event({"uuid": empty}).uuid is None

    def test_wrong_types_become_defaults(self) -> None:
        response = event({"stuff": "x", "dests": 3, "segments": {"a": 1}, "traits": None, "errors": "boom", "tid": []})
        assert response == DcsResponse()

    def test_stuff_entries_are_tolerant(self) -> None:
        response = event({"stuff": [{"cn": 1, "cv": None, "ttl": "30"}, "junk", {"ttl": 1.5}, {"ttl": "x"}]})
        assert [(s.cn, s.cv, s.ttl) for s in response.stuff] == [
            ("1", None, 30),
            (None, None, None),
            (None, None, None),
        ]

    def test_segments_from_a_comma_string(self) -> None:
        assert event({"segments": "1, 2,,3"}).segments == ["1", "2", "3"]

    def test_error_codes_as_numeric_strings(self) -> None:
        response = event({"errors": [{"code": "309", "msg": "x"}, {"code": 101.0}, {"code": "x"}, {"msg": "no code"}]})
        assert response.errors == [DcsErrorItem(code=309, msg="x"), DcsErrorItem(code=101, msg="")]

    def test_a_single_error_object_is_read_as_a_list(self) -> None:
        assert event({"errors": {"code": 311, "msg": "bad"}}).codes == [311]

    def test_extra_keys_are_ignored(self) -> None:
        assert event({"ibs": [], "dpcalls": 1, "new_field": {"x": 1}}) == DcsResponse()


class TestErrorViews:
    def test_warnings_ride_along_with_data(self) -> None:
        response = event({"uuid": "1", "errors": [{"code": 309, "msg": "discarded"}, {"code": 310, "msg": "ns"}]})
        assert response.warnings == [DcsErrorItem(code=309, msg="discarded"), DcsErrorItem(code=310, msg="ns")]
        assert response.classes == {ErrorClass.WARNING}
        assert not response.discarded
        assert response.invalid == []

    @pytest.mark.parametrize("code", [171, 172, 173, 315])
    def test_opt_out(self, code: int) -> None:
        response = event({"errors": [{"code": code}]})
        assert response.opted_out
        assert response.discarded
        assert not response.blocked

    @pytest.mark.parametrize("code", [198, 199, 303, 304, 306, 307])
    def test_blocked(self, code: int) -> None:
        response = event({"errors": [{"code": code}]})
        assert response.blocked
        assert response.discarded
        assert not response.opted_out

    def test_dropped(self) -> None:
        response = event({"errors": [{"code": 311}]})
        assert response.dropped
        assert response.discarded

    def test_invalid_and_transient(self) -> None:
        response = event({"errors": [{"code": 101}, {"code": 102}, {"code": 0}, {"code": 204}, {"code": 309}]})
        assert response.invalid == [101, 102]
        assert response.transient == [0, 204]
        assert response.codes_in(ErrorClass.INVALID, ErrorClass.WARNING) == [101, 102, 309]
        assert response.codes == [101, 102, 0, 204, 309]


class TestErrorHeader:
    def test_header_codes_are_merged_without_duplicates(self) -> None:
        response = event({"errors": [{"code": 309, "msg": "x"}]}, x_error="101, 309,102,101")
        assert response.codes == [309, 101, 102]
        assert response.invalid == [101, 102]

    def test_header_alone(self) -> None:
        assert event({}, x_error="171").opted_out

    @pytest.mark.parametrize(
        ("value", "codes"), [(None, []), ("", []), ("101,102", [101, 102]), (" 1 , x, 2.5,3", [1, 3])]
    )
    def test_parse_error_header(self, value: str | None, codes: list[int]) -> None:
        assert parse_error_header(value) == codes

    def test_id_service_header_codes(self) -> None:
        response = id_answer({"error_message": [{"code": 101, "msg": "m"}]}, x_error="101,2")
        assert sorted(response.codes) == [2, 101]


class TestBadBodies:
    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"   ",
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00",
            b"[1, 2]",
            b'"text"',
            b"null",
            b"42",
            b'{"uuid": "1", "dcs',
            b'fn({"uuid": "1"})',
            b"<html>error</html>",
            b"\xff\xfe{}",
        ],
    )
    def test_anything_but_a_json_object_is_a_bad_response(self, body: bytes) -> None:
        with pytest.raises(DcsBadResponse) as info:
            parse_event_response(body)
        assert info.value.retryable
        with pytest.raises(DcsBadResponse):
            parse_id_response(body)

    def test_the_tid_is_recovered_from_a_truncated_body(self) -> None:
        with pytest.raises(DcsBadResponse) as info:
            parse_event_response(b'{"stuff": [], "tid": "31ZpxW5bQGc=", "uuid": "1')
        assert info.value.tid == "31ZpxW5bQGc="

    def test_the_tid_is_recovered_from_jsonp(self) -> None:
        with pytest.raises(DcsBadResponse) as info:
            parse_id_response(b'cb({"d_mid": "1", "tid": "AbC="})')
        assert info.value.tid == "AbC="


class TestIdServiceResponse:
    def test_documented_example(self) -> None:
        response = id_answer(
            {
                "d_mid": "04512783304617290021837465019283746501",
                "id_sync_ttl": 604800,
                "d_blob": "Zm9vYmFy",
                "dcs_region": 9,
                "d_ottl": 7200,
                "ibs": [{"id": 1}],
                "subdomain": "yourpartner",
                "tid": "AbCdEfGhIjk=",
            }
        )
        assert response.d_mid == "04512783304617290021837465019283746501"
        assert response.dcs_region == 9
        assert response.id_sync_ttl == 604800
        assert response.d_blob == "Zm9vYmFy"
        assert response.subdomain == "yourpartner"
        assert response.tid == "AbCdEfGhIjk="
        assert not response.opted_out

    def test_defaults(self) -> None:
        response = id_answer({})
        assert response.d_mid is None
        assert response.id_sync_ttl == 604800
        assert response.d_ottl == 7200
        assert response.d_optout == []
        assert response.codes == []

    @pytest.mark.parametrize("mid", [None, "", "<null>", "  "])
    def test_null_mids_are_absent(self, mid: str | None) -> None:
        assert id_answer({"d_mid": mid}).d_mid is None

    def test_numeric_strings(self) -> None:
        response = id_answer({"dcs_region": "6", "id_sync_ttl": "1000", "d_ottl": "60"})
        assert (response.dcs_region, response.id_sync_ttl, response.d_ottl) == (6, 1000, 60)

    def test_d_region_alias_and_bad_ttls(self) -> None:
        response = id_answer({"d_region": 3, "id_sync_ttl": "soon", "d_ottl": None})
        assert (response.dcs_region, response.id_sync_ttl, response.d_ottl) == (3, 604800, 7200)

    @pytest.mark.parametrize(
        ("optout", "opted_out"), [(["global"], True), ("global", True), ([], False), (None, False), ([""], False)]
    )
    def test_opt_out(self, optout: object, opted_out: bool) -> None:
        assert id_answer({"d_optout": optout}).opted_out is opted_out

    def test_both_error_containers(self) -> None:
        response = id_answer(
            {
                "d_mid": None,
                "error_msg": "Invalid marketing cloud id",
                "error_message": [{"code": 101, "msg": "Invalid marketing cloud passed in"}],
                "errors": [{"code": "2", "msg": "org"}],
            }
        )
        assert response.error_msg == "Invalid marketing cloud id"
        assert sorted(response.codes) == [2, 101]
        assert response.invalid


# -- property-based tolerance ----------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
known_keys = st.sampled_from(
    [
        "uuid",
        "u",
        "dcs_region",
        "d_region",
        "region",
        "tid",
        "stuff",
        "dests",
        "segments",
        "traits",
        "errors",
        "d_mid",
        "id_sync_ttl",
        "d_blob",
        "d_ottl",
        "d_optout",
        "error_msg",
        "error_message",
        "subdomain",
        "ibs",
        "cn",
        "cv",
        "ttl",
        "dmn",
        "code",
        "msg",
    ]
)
entry = st.dictionaries(known_keys, json_values, max_size=4)
json_objects = st.dictionaries(known_keys, json_values | st.lists(entry, max_size=3) | entry, max_size=8)


@given(json_objects, st.none() | st.text(max_size=20))
@settings(max_examples=150, deadline=None)
def test_any_json_object_parses(payload: dict[str, Any], x_error: str | None) -> None:
    body = json.dumps(payload).encode()
    response = parse_event_response(body, x_error=x_error)
    assert all(isinstance(code, int) for code in response.codes)
    assert all(isinstance(segment, str) for segment in response.segments)
    assert response.dcs_region is None or isinstance(response.dcs_region, int)
    response.discarded  # noqa: B018 - every view works
    id_response = parse_id_response(body, x_error=x_error)
    assert isinstance(id_response.id_sync_ttl, int)
    assert id_response.opted_out in (True, False)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_only_bad_response(body: bytes) -> None:
    try:
        parse_event_response(body)
        parse_id_response(body)
    except DcsBadResponse:
        pass


@given(json_values.filter(lambda value: not isinstance(value, dict)))
def test_json_that_is_not_an_object_is_a_bad_response(value: object) -> None:
    with pytest.raises(DcsBadResponse):
        parse_event_response(json.dumps(value).encode())

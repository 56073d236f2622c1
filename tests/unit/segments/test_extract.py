"""Segment extraction from DCS answers: cookie destinations in ``stuff`` and ``d_cts`` arrays."""

import pytest

from aam_dcs.dcs.response import StuffEntry, parse_event_response
from aam_dcs.segments.extract import (
    CookieFormat,
    extract_segments,
    segments_from_cookie_value,
    segments_from_stuff,
)


def answer(**fields):
    import json

    return parse_event_response(json.dumps(fields).encode())


def entry(cn, cv):
    return StuffEntry(cn=cn, cv=cv, ttl=30, dmn="aam-api.com")


@pytest.mark.parametrize(
    ("cv", "expected"),
    [
        ("segs=14612,14623", ["14612", "14623"]),
        ("segs%3D14612%2C14623", ["14612", "14623"]),
        ("color=blue;segs=1,2;tier=gold", ["1", "2"]),
        ("color=blue%3Bsegs%3D1%2C2", ["1", "2"]),
        ("a=x&segs=1&segs=2", ["1", "2"]),
        ("segs=1,,2, 3 ,1", ["1", "2", "3"]),
        (" segs =7", ["7"]),
        ("segments=1,2", []),
        ("mysegs=1", []),
        ("segs", []),
        ("segs=", []),
        ("", []),
        ("segs=a%20b,c", ["a b", "c"]),
    ],
)
def test_values_of_the_key_inside_a_cookie_value(cv, expected):
    assert segments_from_cookie_value(cv, CookieFormat()) == expected


def test_delimiters_are_parameters():
    fmt = CookieFormat(key="s", pair_separators="|", key_value_separator=":", value_separator="/")
    assert segments_from_cookie_value("x:1|s:5/6/5", fmt) == ["5", "6"]


def test_empty_delimiters_are_refused():
    with pytest.raises(ValueError, match="delimiters"):
        CookieFormat(value_separator="")


def test_without_a_cookie_name_every_entry_counts_in_order_without_duplicates():
    entries = [entry("aam_seg", "segs=1,2"), entry("other", "segs=2,3"), entry("third", "color=blue")]
    assert segments_from_stuff(entries, CookieFormat()) == ["1", "2", "3"]


def test_a_cookie_name_selects_its_entries_only():
    entries = [entry("aam_seg", "segs=1,2"), entry("other", "segs=3"), entry("aam_seg", "segs=4")]
    assert segments_from_stuff(entries, CookieFormat(cookie_name="aam_seg")) == ["1", "2", "4"]
    assert segments_from_stuff(entries, CookieFormat(cookie_name="missing")) == []


def test_entries_without_a_value_are_skipped():
    assert segments_from_stuff([StuffEntry(cn="aam_seg"), entry("aam_seg", "segs=9")], CookieFormat()) == ["9"]


def test_stuff_source_reads_stuff_and_ignores_cts_arrays():
    response = answer(stuff=[{"cn": "aam_seg", "cv": "segs=14612,14623"}], segments=[984263], uuid="1" * 38)
    assert extract_segments(response, "stuff", CookieFormat()) == ["14612", "14623"]


def test_cts_source_reads_the_segments_array_as_strings():
    response = answer(stuff=[{"cn": "aam_seg", "cv": "segs=1"}], segments=[984263, "985264", 984263], traits=[420020])
    assert extract_segments(response, "cts", CookieFormat()) == ["984263", "985264"]


def test_missing_arrays_mean_no_segments():
    assert extract_segments(answer(uuid="1" * 38), "cts", CookieFormat()) == []
    assert extract_segments(answer(uuid="1" * 38), "stuff", CookieFormat()) == []


def test_format_from_settings():
    from tests.support.segments import bundle_settings

    fmt = CookieFormat.from_settings(bundle_settings(AAM_SEGMENT_COOKIE="aam_seg", AAM_SEGMENT_KEY="k"))
    assert (fmt.cookie_name, fmt.key) == ("aam_seg", "k")
    assert CookieFormat.from_settings(bundle_settings()).cookie_name is None

import base64
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aam_dcs.ids.cookies import (
    MAX_COOKIE_HEADER_CHARS,
    MAX_COOKIES,
    Cookie,
    CookieIds,
    extract_cookie_ids,
    kndctr_cookie_name,
    parse_adobe_mc,
    parse_cookie_header,
    parse_kndctr,
    parse_s_ecid,
    parse_uuid_cookie,
    read_proto_field1_string,
)
from tests.unit.ids import strategies as gen

ORG = gen.ORG_ID
MID = "04512783304617290021837465019283746501"
UUID = "06151304227769720433039235178204449977"
NOW = 1_727_400_000


def adobe_mc(ts: int = NOW, mid: str = MID, org: str = ORG, *, encoded: bool = True) -> str:
    value = f"TS={ts}|MCMID={mid}|MCAID=NONE|MCORGID={org}"
    return quote(value, safe="") if encoded else value


# --- the header ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1; b=2", [("a", "1"), ("b", "2")]),
        ("a=1;b=2;", [("a", "1"), ("b", "2")]),
        ("  a = 1 ;\tb=2", [("a", "1"), ("b", "2")]),
        ("a=b=c", [("a", "b=c")]),  # split on the first '=' only
        ("a=1; a=2", [("a", "1"), ("a", "2")]),  # duplicates kept, in order
        ("AMCV_X%40AdobeOrg=v%7Cw", [("AMCV_X@AdobeOrg", "v%7Cw")]),  # name decoded, value raw
        ("a+b=1", [("a+b", "1")]),  # unquote, not unquote_plus
        ("flag; =nameless; a=1", [("a", "1")]),
        ("a=", [("a", "")]),
        ('q="quoted"', [("q", '"quoted"')]),
        ("", []),
        (";;;", []),
    ],
)
def test_header_splitting(header, expected):
    assert parse_cookie_header(header) == tuple(Cookie(n, v) for n, v in expected)


@pytest.mark.parametrize("header", [None, 42, b"a=1"])
def test_header_not_text(header):
    assert parse_cookie_header(header) == ()


def test_cookie_count_is_capped():
    header = "; ".join(f"c{i}=1" for i in range(MAX_COOKIES + 50))
    cookies = parse_cookie_header(header)
    assert len(cookies) == MAX_COOKIES
    assert cookies[-1].name == f"c{MAX_COOKIES - 1}"


def test_header_size_is_capped_and_a_cut_piece_dropped():
    filler = "; ".join(f"c{i}=" + "v" * 20 for i in range(MAX_COOKIE_HEADER_CHARS // 25))
    header = f"{filler}; AMCV_{ORG}=MCMID%7C{MID}"
    cookies = parse_cookie_header(header)
    assert sum(len(f"{c.name}={c.value}") + 2 for c in cookies) <= MAX_COOKIE_HEADER_CHARS
    assert all(c.value == "v" * 20 for c in cookies)


@given(st.text())
def test_header_never_raises_on_text(text):
    parse_cookie_header(text)
    extract_cookie_ids(parse_cookie_header(text), ORG, NOW)


@given(st.binary())
def test_header_never_raises_on_latin1(data):
    extract_cookie_ids(parse_cookie_header(data.decode("latin-1")), ORG, NOW)


@pytest.mark.parametrize("header", ["=" * 100_000, ";" * 100_000, "%" * 100_000, "a=%" * 30_000, "\x00=\x00;" * 5000])
def test_header_never_raises_on_huge_input(header):
    parse_cookie_header(header)


# --- carriers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"MCMID%7C{MID}", MID),
        (f"MCMID|{MID}", MID),
        (f"MCMID%257C{MID}", MID),
        ("MCMID%7CNONE", None),
        (MID, None),
        ("", None),
    ],
)
def test_s_ecid(value, expected):
    assert parse_s_ecid(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(UUID, UUID), (f'"{UUID}"', UUID), ("NOTARGET", None), (UUID[:-1], None), ("٣" * 38, None), ("", None)],
)
def test_uuid_cookie(value, expected):
    assert parse_uuid_cookie(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(adobe_mc(), MID, id="fresh-encoded"),
        pytest.param(adobe_mc(encoded=False), MID, id="fresh-raw"),
        pytest.param(adobe_mc(NOW - 300), MID, id="exactly-300s-old"),
        pytest.param(adobe_mc(NOW - 301), None, id="too-old"),
        pytest.param(adobe_mc(NOW + 60), MID, id="small-future-skew"),
        pytest.param(adobe_mc(NOW + 61), None, id="too-far-in-future"),
        pytest.param(adobe_mc(org=gen.OTHER_ORG_ID), None, id="other-org"),
        pytest.param(adobe_mc(org=ORG.lower()), None, id="org-is-case-sensitive"),
        pytest.param(adobe_mc(mid="NONE"), None, id="invalid-mid"),
        pytest.param(f"MCMID={MID}|MCORGID={ORG}", None, id="no-ts"),
        pytest.param(f"TS=abc|MCMID={MID}|MCORGID={ORG}", None, id="ts-not-a-number"),
        pytest.param(quote(adobe_mc(), safe=""), MID, id="double-encoded"),
        pytest.param("", None, id="empty"),
    ],
)
def test_adobe_mc(value, expected):
    assert parse_adobe_mc(value, org_id=ORG, now=NOW) == expected


@given(value=gen.user_ids, before=gen.proto_noise, after=gen.proto_noise)
def test_kndctr_reads_field_1_among_other_fields(value, before, after):
    assert parse_kndctr(gen.kndctr_value(value, before=before, after=after)) == value


def test_kndctr_with_metadata_and_padding_and_percent_encoding():
    metadata = gen.proto_varint(1, 1_700_000_000) + gen.proto_string(5, "VA6")
    payload = gen.proto_string(1, MID) + gen.varint(10 << 3 | 2) + gen.varint(len(metadata)) + metadata
    value = base64.urlsafe_b64encode(payload).decode()
    assert parse_kndctr(value) == MID
    assert parse_kndctr(quote(value, safe="")) == MID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "!!!not base64!!!",
        gen.kndctr_value("NOTANECID"),
        base64.urlsafe_b64encode(gen.proto_varint(1, 5)).decode(),  # field 1 with the wrong wire type
        base64.urlsafe_b64encode(gen.proto_string(1, MID)[:-5]).decode(),  # truncated
        base64.urlsafe_b64encode(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").decode(),  # varint too long
        base64.urlsafe_b64encode(b"\x0f\x00").decode(),  # unknown wire type 7
        "A" * 5000,
    ],
)
def test_kndctr_rejects(value):
    assert parse_kndctr(value) is None


@given(st.binary(max_size=300))
def test_proto_reader_never_raises(data):
    read_proto_field1_string(data)


@given(st.text())
def test_carrier_parsers_never_raise_on_text(text):
    parse_s_ecid(text)
    parse_uuid_cookie(text)
    parse_kndctr(text)
    parse_adobe_mc(text, org_id=ORG, now=NOW)


@given(
    st.lists(
        st.sampled_from(["%", "%7C", "%25", "%3D", "=", "|", "TS", "MCMID", "MCORGID", "-", "_", MID]), max_size=50
    )
)
def test_carrier_parsers_never_raise_on_percent_soup(parts):
    text = "".join(parts)
    parse_s_ecid(text)
    parse_kndctr(text)
    parse_adobe_mc(text, org_id=ORG, now=NOW)


def test_extract_all_carriers():
    header = "; ".join(
        [
            f"AMCV_{quote(ORG, safe='')}=MCMID%7C{MID}",
            f"AMCV_{ORG}=raw",
            f"s_ecid=MCMID%7C{MID}",
            f"{kndctr_cookie_name(ORG)}={gen.kndctr_value(MID)}",
            f"adobe_mc={adobe_mc()}",
            "aam_uuid=NOTARGET",
            f"aam_did={UUID}",
        ]
    )
    ids = extract_cookie_ids(parse_cookie_header(header), ORG, NOW)
    assert ids == CookieIds(
        amcv_values=(f"MCMID%7C{MID}", "raw"),
        s_ecid_mid=MID,
        kndctr_mid=MID,
        adobe_mc_mid=MID,
        aam_uuid=UUID,
    )


def test_kndctr_name_replaces_the_at_sign():
    assert kndctr_cookie_name(ORG) == "kndctr_0123456789ABCDEF01234567_AdobeOrg_identity"


def test_other_org_cookies_are_ignored():
    other = gen.OTHER_ORG_ID
    header = f"AMCV_{other}=MCMID%7C{MID}; {kndctr_cookie_name(other)}={gen.kndctr_value(MID)}"
    assert extract_cookie_ids(parse_cookie_header(header), ORG, NOW) == CookieIds()

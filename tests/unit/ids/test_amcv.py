from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aam_dcs.ids.amcv import MAX_AMCV_CHARS, AmcvFields, decode_value, parse_amcv, pick_amcv
from aam_dcs.ids.cookies import amcv_cookie_name, cookie_values, parse_cookie_header
from tests.unit.ids import strategies as gen

MID = "04512783304617290021837465019283746501"
MID2 = "12345678901234567890123456789012345678"
WORKED_EXAMPLE = (
    "1585540135%7CMCIDTS%7C19994%7CMCMID%7C04512783304617290021837465019283746501%7CMCAAMLH-1728004800%7C9"
    "%7CMCAAMB-1728004800%7CZm9vYmFyYmF6cXV4X2V4YW1wbGU%7CMCOPTOUT-1727407200s%7CNONE%7CMCAID%7CNONE"
    "%7CvVersion%7C4.4.0"
)


def check_recovered(fields: AmcvFields | None, case: gen.AmcvCase) -> None:
    assert fields is not None
    expected = case.expected
    assert fields.digest == case.digest
    assert dict(fields.fields) == {name: entry.value for name, entry in expected.items()}
    assert fields.mid == (expected["MCMID"].value if "MCMID" in expected else None)
    region = expected.get("MCAAMLH")
    assert fields.region_id == (int(region.value) if region else None)
    assert fields.region_expires_at == (region.expires_at if region else None)
    blob = expected.get("MCAAMB")
    assert fields.blob == (blob.value if blob else None)
    assert fields.blob_expires_at == (blob.expires_at if blob else None)
    optout = expected.get("MCOPTOUT")
    assert fields.optout_value == (optout.value if optout else None)
    assert fields.optout_expires_at == (optout.expires_at if optout else None)
    assert fields.opted_out == (optout is not None and optout.value != "NONE")
    assert fields.version == (expected["vVersion"].value if "vVersion" in expected else None)


# --- property-based ---------------------------------------------------------------------------


@given(gen.amcv_cases())
def test_reader_recovers_every_generated_field(case):
    check_recovered(parse_amcv(case.raw), case)


@given(case=gen.amcv_cases(), encoded_name=st.booleans(), before=gen.other_cookies(), after=gen.other_cookies())
def test_reader_finds_the_cookie_inside_a_header(case, encoded_name, before, after):
    pieces = [*before, f"{gen.amcv_name(gen.ORG_ID, encoded=encoded_name)}={case.raw}", *after]
    cookies = parse_cookie_header("; ".join(pieces))
    values = cookie_values(cookies, amcv_cookie_name(gen.ORG_ID))
    assert values == [case.raw]
    check_recovered(pick_amcv(values), case)


@given(st.text())
def test_never_raises_on_text(text):
    parse_amcv(text)
    pick_amcv([text, text[::-1]])


@given(st.binary())
def test_never_raises_on_latin1_bytes(data):
    parse_amcv(data.decode("latin-1"))


@given(
    st.lists(st.sampled_from(["%", "%7C", "%25", "%7", "|", "-", "s", "MCMID", "MCOPTOUT", "9", "T", MID]), max_size=60)
)
def test_never_raises_on_percent_soup(parts):
    text = "".join(parts)
    parse_amcv(text)
    decode_value(text)


@pytest.mark.parametrize(
    "text",
    [
        "%" * 4096,
        "%25" * 1365,
        "|" * 4096,
        "-1|" * 1365,
        "1" * 4096,
        "MCMID-" + "9" * 4000 + "|x",
        "\x00" * 4096,
        "\ud800",
    ],
)
def test_never_raises_on_pathological_values(text):
    parse_amcv(text)


# --- tables -----------------------------------------------------------------------------------


def test_worked_example_from_the_reference():
    fields = parse_amcv(WORKED_EXAMPLE)
    assert fields == AmcvFields(
        mid=MID,
        region_id=9,
        region_expires_at=1728004800,
        blob="Zm9vYmFyYmF6cXV4X2V4YW1wbGU",
        blob_expires_at=1728004800,
        opted_out=False,
        optout_value="NONE",
        optout_expires_at=1727407200,
        digest=1585540135,
        version="4.4.0",
        fields={
            "MCIDTS": "19994",
            "MCMID": MID,
            "MCAAMLH": "9",
            "MCAAMB": "Zm9vYmFyYmF6cXV4X2V4YW1wbGU",
            "MCOPTOUT": "NONE",
            "MCAID": "NONE",
            "vVersion": "4.4.0",
        },
    )


@pytest.mark.parametrize(
    ("value", "mid", "region"),
    [
        pytest.param(f"MCMID|{MID}", MID, None, id="web-sdk-raw-pipe"),
        pytest.param(f"MCMID%7C{MID}", MID, None, id="web-sdk-encoded"),
        pytest.param(quote(quote(f"MCMID|{MID}|MCAAMLH-1|3", safe=""), safe=""), MID, 3, id="double-encoded"),
        pytest.param(f'"MCMID|{MID}"', MID, None, id="quoted-value"),
        pytest.param(f"-637568504|MCMID|{MID}|MCAAMLH-1|12", MID, 12, id="negative-digest"),
        pytest.param(f"MCAAMLH-1|7|MCMID|{MID}", MID, 7, id="any-order"),
        pytest.param(f"MCMID|{MID}|MCAAMLH", MID, None, id="odd-trailing-token"),
        pytest.param(f"MCMID|{MID2}|MCMID|{MID}", MID, None, id="later-duplicate-wins"),
        pytest.param("MCMID|NONE", None, None, id="mid-NONE"),
        pytest.param("MCMID|NOTARGET", None, None, id="mid-NOTARGET"),
        pytest.param(f"MCMID|{MID[:-1]}", None, None, id="mid-37-digits"),
        pytest.param("MCMID|" + "٣" * 38, None, None, id="mid-non-ascii-digits"),
        pytest.param(f"MCMID|{MID}|MCAAMLH-1728004800|5", MID, None, id="unknown-region"),
        pytest.param(f"MCMID|{MID}|MCAAMLH-1728004800|abc", MID, None, id="non-numeric-region"),
        pytest.param(f"MCMID|{MID}|MCAAMLH-xyz|9", MID, 9, id="bad-expiry-keeps-value"),
    ],
)
def test_values(value, mid, region):
    fields = parse_amcv(value)
    assert fields is not None
    assert (fields.mid, fields.region_id) == (mid, region)


@pytest.mark.parametrize("value", ["", "T", " T ", "%54", "   ", "x", "1585540135", "1585540135|", None, 42, b"MCMID"])
def test_values_that_say_nothing(value):
    assert parse_amcv(value) is None


def test_too_long_value_is_ignored():
    value = f"MCMID|{MID}|MCAAMB|" + "a" * MAX_AMCV_CHARS
    assert parse_amcv(value) is None


def test_expired_region_and_blob_are_still_used():
    fields = parse_amcv(f"MCMID|{MID}|MCAAMLH-1|9|MCAAMB-1|blob_1")
    assert fields is not None
    assert (fields.region_id, fields.region_expires_at, fields.blob, fields.blob_expires_at) == (9, 1, "blob_1", 1)


@pytest.mark.parametrize(
    ("value", "opted_out"),
    [
        ("MCOPTOUT-1727407200s|NONE", False),
        ("MCOPTOUT-1727407200s|global", True),
        ("MCOPTOUT-1s|global", True),  # expiry long past: still opted out
        ("MCOPTOUT|global,ns1", True),
        ("MCOPTOUT|none", True),  # only the exact NONE means "not opted out"
        ("MCOPTOUT|", False),  # an empty value: nothing written
    ],
)
def test_opt_out(value, opted_out):
    fields = parse_amcv(f"MCMID|{MID}|{value}")
    assert fields is not None
    assert fields.opted_out is opted_out
    assert fields.mid == MID


@pytest.mark.parametrize("blob", ["has space", "plus+slash/", "a" * 513, "é"])
def test_invalid_blob_is_dropped(blob):
    fields = parse_amcv(f"MCMID|{MID}|MCAAMB-1|{quote(blob, safe='')}")
    assert fields is not None
    assert fields.blob is None
    assert fields.blob_expires_at is None
    assert fields.mid == MID


def test_blob_of_512_is_kept():
    fields = parse_amcv(f"MCAAMB|{'a' * 512}")
    assert fields is not None
    assert fields.blob == "a" * 512


def test_overlong_digest_is_dropped_without_a_number():
    fields = parse_amcv("9" * 30 + f"|MCMID|{MID}")
    assert fields is not None
    assert fields.digest is None
    assert fields.mid == MID


# --- several cookies of the same name ---------------------------------------------------------


def test_pick_prefers_a_copy_with_a_valid_mid():
    chosen = pick_amcv(["MCMID|NONE|MCAAMLH-99999|9", f"MCMID|{MID}|MCAAMLH-1|3"])
    assert chosen is not None
    assert (chosen.mid, chosen.region_id) == (MID, 3)


def test_pick_prefers_the_latest_region_expiry_when_copies_disagree():
    older = f"MCMID|{MID2}|MCAAMLH-1000|3"
    newer = f"MCMID|{MID}|MCAAMLH-2000|9"
    for values in ([older, newer], [newer, older]):
        chosen = pick_amcv(values)
        assert chosen is not None
        assert (chosen.mid, chosen.region_id) == (MID, 9)


def test_pick_keeps_an_opt_out_from_any_copy():
    chosen = pick_amcv([f"MCMID|{MID}|MCAAMLH-2000|9", f"MCMID|{MID2}|MCAAMLH-1|3|MCOPTOUT-1s|global"])
    assert chosen is not None
    assert chosen.mid == MID
    assert chosen.opted_out
    assert chosen.optout_value == "global"


@pytest.mark.parametrize("values", [[], ["T", ""], [None]])
def test_pick_with_nothing(values):
    assert pick_amcv(values) is None


def test_pick_with_duplicate_cookies_in_a_header():
    name = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"
    header = f"{name}=MCMID%7CNONE; other=1; {name}=MCMID%7C{MID}%7CMCAAMLH-5%7C6"
    values = cookie_values(parse_cookie_header(header), amcv_cookie_name(gen.ORG_ID))
    assert len(values) == 2
    chosen = pick_amcv(values)
    assert chosen is not None
    assert (chosen.mid, chosen.region_id) == (MID, 6)

"""Hypothesis strategies for AMCV cookies built from the grammar, with the fields a reader must recover."""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st

from aam_dcs.dcs.regions import REGION_HOSTS

ORG_ID = "0123456789ABCDEF01234567@AdobeOrg"
OTHER_ORG_ID = "FEDCBA9876543210FEDCBA98@AdobeOrg"

user_ids = st.text(alphabet="0123456789", min_size=38, max_size=38)
regions = st.sampled_from(sorted(REGION_HOSTS))
blobs = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=120)
expiries = st.integers(min_value=0, max_value=10**12 - 1)
digests = st.integers(min_value=-(2**31), max_value=2**31 - 1)
optouts = st.sampled_from(["NONE", "global", "global,ns1"])
versions = st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.integers(1, 9), st.integers(0, 20), st.integers(0, 20))
analytics_ids = st.one_of(
    st.just("NONE"),
    st.builds(
        lambda a, b: f"{a}-{b}",
        st.text("0123456789ABCDEF", min_size=16, max_size=16),
        st.text("0123456789ABCDEF", min_size=16, max_size=16),
    ),
)

# name -> (value strategy, expiry: "always" | "never" | "maybe")
FIELD_SPECS = {
    "MCMID": (user_ids.map(str), "never"),
    "MCAAMLH": (regions.map(str), "always"),
    "MCAAMB": (blobs, "always"),
    "MCOPTOUT": (optouts, "always"),
    "MCIDTS": (st.integers(0, 99999).map(str), "maybe"),
    "MCAID": (analytics_ids, "maybe"),
    "vVersion": (versions, "never"),
    "MCCIDH": (st.integers(-(2**31), 2**31 - 1).map(str), "maybe"),
}


@dataclass(frozen=True)
class Entry:
    name: str
    value: str
    expires_at: int | None = None
    session: bool = False

    def tokens(self) -> list[str]:
        key = self.name
        if self.expires_at is not None:
            key += f"-{self.expires_at}{'s' if self.session else ''}"
        return [key, self.value]


@dataclass(frozen=True)
class AmcvCase:
    """A generated AMCV cookie value and the fields a reader must find in it."""

    digest: int | None
    entries: list[Entry]
    rounds: int
    expected: dict[str, Entry] = field(default_factory=dict)

    @property
    def raw(self) -> str:
        tokens = [str(self.digest)] if self.digest is not None else []
        for entry in self.entries:
            tokens += entry.tokens()
        value = "|".join(tokens)
        for _ in range(self.rounds):
            value = quote(value, safe="")
        return value


@st.composite
def entries_for(draw: st.DrawFn, name: str) -> Entry:
    values, expiry_rule = FIELD_SPECS[name]
    has_expiry = expiry_rule == "always" or (expiry_rule == "maybe" and draw(st.booleans()))
    return Entry(
        name,
        draw(values),
        draw(expiries) if has_expiry else None,
        draw(st.booleans()) if has_expiry else False,
    )


@st.composite
def amcv_cases(draw: st.DrawFn, *, max_rounds: int = 2) -> AmcvCase:
    names = draw(st.lists(st.sampled_from(sorted(FIELD_SPECS)), unique=True, min_size=1))
    final = [draw(entries_for(name)) for name in names]
    final = draw(st.permutations(final))
    entries = list(final)
    # Earlier duplicates of some keys: the later one (already in ``entries``) must win.
    for name in draw(st.lists(st.sampled_from(names), unique=True)):
        position = next(i for i, entry in enumerate(entries) if entry.name == name)
        entries.insert(draw(st.integers(0, position)), draw(entries_for(name)))
    return AmcvCase(
        digest=draw(st.none() | digests),
        entries=entries,
        rounds=draw(st.integers(0, max_rounds)),
        expected={entry.name: entry for entry in final},
    )


cookie_names = st.text(alphabet=string.ascii_letters + string.digits + "_", max_size=12).map(lambda name: "x" + name)
other_values = st.text(alphabet=string.ascii_letters + string.digits + "_-.%|", max_size=40)


@st.composite
def other_cookies(draw: st.DrawFn) -> list[str]:
    """Unrelated cookies, the session flag cookie and another org's AMCV."""
    pieces = [f"{draw(cookie_names)}={draw(other_values)}" for _ in range(draw(st.integers(0, 5)))]
    if draw(st.booleans()):
        pieces.append(f"AMCVS_{quote(ORG_ID, safe='')}=1")
    if draw(st.booleans()):
        pieces.append(f"AMCV_{quote(OTHER_ORG_ID, safe='')}=MCMID%7C{'1' * 38}%7CMCAAMLH-1%7C3")
    return pieces


def amcv_name(org_id: str, *, encoded: bool) -> str:
    return "AMCV_" + (quote(org_id, safe="") if encoded else org_id)


# --- protobuf, for the kndctr cookie -------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def proto_string(field_number: int, text: str) -> bytes:
    data = text.encode()
    return varint(field_number << 3 | 2) + varint(len(data)) + data


def proto_varint(field_number: int, value: int) -> bytes:
    return varint(field_number << 3) + varint(value)


def kndctr_value(ecid: str, *, before: bytes = b"", after: bytes = b"") -> str:
    payload = before + proto_string(1, ecid) + after
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


proto_noise = st.lists(
    st.one_of(
        st.builds(proto_varint, st.integers(2, 40), st.integers(0, 2**63)),
        st.builds(proto_string, st.integers(2, 40), st.text(max_size=20)),
        st.builds(lambda n, b: varint(n << 3 | 1) + b, st.integers(2, 40), st.binary(min_size=8, max_size=8)),
        st.builds(lambda n, b: varint(n << 3 | 5) + b, st.integers(2, 40), st.binary(min_size=4, max_size=4)),
    ),
    max_size=5,
).map(b"".join)

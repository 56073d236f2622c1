"""A tolerant ``Cookie`` header splitter and the first-party carriers of Adobe IDs (reference 2.2, 2.7).

``http.cookies`` gives up on the garbage real headers carry, so the header is split by hand:
on ``;``, each piece on its first ``=``, spaces stripped, names percent-decoded with ``unquote``
(not ``unquote_plus``: a ``+`` is not a space here), values kept raw. Duplicates stay, in order:
several AMCV cookies of the same name can come from different domains or paths.

Carriers read here (each parser returns ``None`` for anything it cannot use, and never raises):

- ``AMCV_<org>``: the name matches with ``@`` raw or as ``%40`` (names are decoded);
- ``s_ecid``: ``MCMID|<ecid>``, percent-encoded or raw;
- ``aam_uuid`` and DIL's ``aam_did``: the AAM UUID;
- ``kndctr_<org with @ replaced by _>_identity``: URL-safe base64 of a protobuf whose field 1 is the ECID;
- ``adobe_mc`` (a cookie, or the URL parameter passed in): ``TS=<unix>|MCMID=<ecid>|MCORGID=<org>``,
  accepted only for the configured org and at most 300 s old.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple
from urllib.parse import unquote

from aam_dcs.ids.amcv import decode_value, parse_amcv, unwrap_quotes
from aam_dcs.ids.validation import valid_user_id

MAX_COOKIE_HEADER_CHARS: Final = 8192
MAX_COOKIES: Final = 200
MAX_CARRIER_CHARS: Final = 4096
MAX_ADOBE_MC_PARTS: Final = 32
MAX_PROTO_FIELDS: Final = 64
MAX_PROTO_STRING: Final = 128
ADOBE_MC_TTL_SECONDS: Final = 300
ADOBE_MC_FUTURE_SKEW_SECONDS: Final = 60

S_ECID: Final = "s_ecid"
AAM_UUID_NAMES: Final = ("aam_uuid", "aam_did")
ADOBE_MC: Final = "adobe_mc"

_ADOBE_MC_UNSAFE = re.compile(r"[^A-Za-z0-9@.]")
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_WIRE_LEN: Final = 2


class Cookie(NamedTuple):
    name: str
    value: str


@dataclass(frozen=True)
class CookieIds:
    """The IDs the cookies carry for one org; ``amcv_values`` are raw, in header order."""

    amcv_values: tuple[str, ...] = ()
    s_ecid_mid: str | None = None
    kndctr_mid: str | None = None
    adobe_mc_mid: str | None = None
    aam_uuid: str | None = None

    @property
    def mid(self) -> str | None:
        """The ECID from the non-AMCV carriers, in the reference's order."""
        return self.s_ecid_mid or self.kndctr_mid or self.adobe_mc_mid


# --- the header ------------------------------------------------------------------------------


def parse_cookie_header(header: object) -> tuple[Cookie, ...]:
    """Every ``name=value`` piece of a raw ``Cookie`` header, in order (at most 200, from at most 8 KB)."""
    if not isinstance(header, str) or not header:
        return ()
    cookies: list[Cookie] = []
    for piece in _capped(header).split(";"):
        cookie = _parse_piece(piece)
        if cookie is not None:
            cookies.append(cookie)
            if len(cookies) >= MAX_COOKIES:
                break
    return tuple(cookies)


def cookie_values(cookies: Sequence[Cookie], name: str) -> list[str]:
    return [cookie.value for cookie in cookies if cookie.name == name]


def _capped(header: str) -> str:
    # Past the cap, the last piece may be cut in the middle of a value: drop it rather than misread it.
    if len(header) <= MAX_COOKIE_HEADER_CHARS:
        return header
    return header[:MAX_COOKIE_HEADER_CHARS].rpartition(";")[0]


def _parse_piece(piece: str) -> Cookie | None:
    name, separator, value = piece.partition("=")
    name = unquote(name.strip(" \t"))
    if not separator or not name:
        return None
    return Cookie(name, value.strip(" \t"))


# --- names -----------------------------------------------------------------------------------


def amcv_cookie_name(org_id: str) -> str:
    """The decoded name; a header's ``AMCV_...%40AdobeOrg`` decodes to it."""
    return f"AMCV_{org_id}"


def kndctr_cookie_name(org_id: str) -> str:
    return f"kndctr_{org_id.replace('@', '_', 1)}_identity"


# --- carriers --------------------------------------------------------------------------------


def extract_cookie_ids(cookies: Sequence[Cookie], org_id: str, now: float) -> CookieIds:
    """Read every carrier of the configured org; the first valid value of each wins."""
    return CookieIds(
        amcv_values=tuple(cookie_values(cookies, amcv_cookie_name(org_id))),
        s_ecid_mid=_first_valid(cookie_values(cookies, S_ECID), parse_s_ecid),
        kndctr_mid=_first_valid(cookie_values(cookies, kndctr_cookie_name(org_id)), parse_kndctr),
        adobe_mc_mid=_first_valid(
            cookie_values(cookies, ADOBE_MC), lambda value: parse_adobe_mc(value, org_id=org_id, now=now)
        ),
        aam_uuid=_first_valid([v for name in AAM_UUID_NAMES for v in cookie_values(cookies, name)], parse_uuid_cookie),
    )


def parse_s_ecid(value: object) -> str | None:
    """The ECID in ``s_ecid`` (``MCMID|<ecid>``: the AMCV grammar, so the AMCV reader reads it)."""
    fields = parse_amcv(value)
    return fields.mid if fields is not None else None


def parse_uuid_cookie(value: object) -> str | None:
    """The AAM UUID copied to a first-party cookie (``aam_uuid``, ``aam_did``)."""
    if not isinstance(value, str) or len(value) > MAX_CARRIER_CHARS:
        return None
    return valid_user_id(decode_value(unwrap_quotes(value)))


def parse_adobe_mc(
    value: object,
    *,
    org_id: str,
    now: float,
    ttl_seconds: int = ADOBE_MC_TTL_SECONDS,
    skew_seconds: int = ADOBE_MC_FUTURE_SKEW_SECONDS,
) -> str | None:
    """The ECID of a fresh ``adobe_mc`` hand-off for this org, else ``None``.

    As Adobe's Web SDK does: split on ``|`` and on ``=``, drop characters outside ``[A-Za-z0-9@.]``
    from each value, require ``MCORGID`` equal to the org and ``TS`` at most ``ttl_seconds`` old;
    also refuse a ``TS`` more than ``skew_seconds`` in the future.
    """
    if not isinstance(value, str) or len(value) > MAX_CARRIER_CHARS:
        return None
    parts = _adobe_mc_parts(decode_value(unwrap_quotes(value)))
    stamp = parts.get("TS", "")
    if parts.get("MCORGID") != org_id or not _TIMESTAMP.fullmatch(stamp):
        return None
    if not now - ttl_seconds <= int(stamp) <= now + skew_seconds:
        return None
    return valid_user_id(parts.get("MCMID"))


def parse_kndctr(value: object) -> str | None:
    """The ECID in the Web SDK's ``kndctr_<org>_identity`` cookie (protobuf field 1, a string)."""
    if not isinstance(value, str) or len(value) > MAX_CARRIER_CHARS:
        return None
    data = _urlsafe_b64(decode_value(unwrap_quotes(value)))
    if data is None:
        return None
    return valid_user_id(read_proto_field1_string(data))


def _first_valid(values: Sequence[str], parse: Callable[[str], str | None]) -> str | None:
    for value in values:
        parsed = parse(value)
        if parsed is not None:
            return parsed
    return None


def _adobe_mc_parts(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for piece in text.split("|", MAX_ADOBE_MC_PARTS)[:MAX_ADOBE_MC_PARTS]:
        key, _, value = piece.partition("=")
        parts[key.strip()] = _ADOBE_MC_UNSAFE.sub("", value)
    return parts


def _urlsafe_b64(text: str) -> bytes | None:
    text = text.strip().rstrip("=").replace("_", "/").replace("-", "+")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


# --- a tiny protobuf reader: field 1 only ------------------------------------------------------


def read_proto_field1_string(data: bytes) -> str | None:
    """The first field-1 length-delimited value as UTF-8, skipping other fields; ``None`` on any doubt."""
    position = 0
    for _ in range(MAX_PROTO_FIELDS):
        tag = _varint(data, position)
        if tag is None:
            return None
        key, position = tag
        if key >> 3 == 1 and key & 7 == _WIRE_LEN:
            return _proto_string(data, position)
        next_position = _skip_field(data, position, key & 7)
        if next_position is None or next_position >= len(data):
            return None
        position = next_position
    return None


def _varint(data: bytes, position: int) -> tuple[int, int] | None:
    value = 0
    for index in range(10):
        if position + index >= len(data):
            return None
        byte = data[position + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, position + index + 1
    return None


def _skip_field(data: bytes, position: int, wire_type: int) -> int | None:
    if wire_type == 0:
        varint = _varint(data, position)
        return varint[1] if varint is not None else None
    if wire_type == _WIRE_LEN:
        length = _varint(data, position)
        return length[1] + length[0] if length is not None else None
    return {1: position + 8, 3: position, 4: position, 5: position + 4}.get(wire_type)


def _proto_string(data: bytes, position: int) -> str | None:
    length = _varint(data, position)
    if length is None or length[0] > MAX_PROTO_STRING or length[1] + length[0] > len(data):
        return None
    start = length[1]
    try:
        return data[start : start + length[0]].decode("utf-8")
    except UnicodeDecodeError:
        return None

"""Wire-level facts of the DCS and the ID service: hosts, regions, error codes, encodings, ID formats.

Everything here is pure (no state, no I/O) so the engine and the tests can share it.
"""

from __future__ import annotations

import base64
import random
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

DEMDEX_SUFFIX = ".demdex.net"
ID_SERVICE_HOST = "dpm.demdex.net"
OPTOUT_HOST = "www.demdex.net"

#: dcs_region -> regional host (the documented table; nothing else is a region).
REGION_HOSTS: dict[int, str] = {
    3: "apse.demdex.net",
    4: "sae.demdex.net",
    6: "irl1.demdex.net",
    7: "use.demdex.net",
    8: "apse2.demdex.net",
    9: "usw2.demdex.net",
    11: "tyo3.demdex.net",
    12: "ind1.demdex.net",
}
HOST_REGIONS: dict[str, int] = {host: region for region, host in REGION_HOSTS.items()}

EVENT_PATH = "/event"
ID_PATH = "/id"
OPTOUT_PATHS = ("/demoptout", "/demoptout.jpg")
DCS_PATHS = (EVENT_PATH, ID_PATH, *OPTOUT_PATHS)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

#: A 1x1 transparent GIF, what the DCS answers without ``d_rtbd=json``.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

ID_SYNC_TTL = 604800
OPTOUT_TTL = 7200
MAX_INT64 = 9223372036854775807

#: Error codes and messages as the DCS documents them. ``{id}``, ``{host}``... are filled in per call.
ERROR_MESSAGES: dict[int, str] = {
    0: "Unspecified error",
    1: "Could not find config for hostname: {host}",
    2: "Invalid d_orgid value passed in request: {id}",
    100: "Could not retrieve host name for the request",
    101: "Invalid Experience Cloud id passed in {id}",
    102: "Invalid AAM ID passed in request {id}",
    104: "All customer IDs are invalid",
    171: "Encountered opt out tag for id {id}",
    300: "Invalid customer id {id}",
    301: "Maximum number of customer ids exceeded. Maximum allowed is {max}. Found is {found}.",
    303: "Blocked customer id {id}",
    306: "Blocked declared device id {id}",
    307: "Blocked profile operation for {id}",
    309: "Customer id {id} was discarded because it exceeded the limit of declared customer ids per request",
    310: "Customer id {id} was discarded because it exceeded the limit for a given namespace: {namespace}",
    311: "Request contains invalid parameters",
}


def error(code: int, **values: object) -> dict[str, object]:
    """One entry of the ``errors`` array: ``{"code": N, "msg": "..."}``."""
    return {"code": code, "msg": ERROR_MESSAGES[code].format(**values)}


def x_error_header(errors: list[dict[str, object]]) -> str:
    """The ``X-Error`` header value: the codes, comma-separated."""
    return ",".join(str(e["code"]) for e in errors)


_DIGITS_38 = re.compile(r"[0-9]{38}", re.ASCII)


def is_valid_id(value: str | None) -> bool:
    """A UUID or a MID as the DCS accepts it: exactly 38 ASCII digits."""
    return value is not None and _DIGITS_38.fullmatch(value) is not None


def mint_id(rng: random.Random) -> str:
    """A new 38-digit ID: two zero-padded 19-digit halves, each a non-negative signed int64."""
    return f"{rng.randint(0, MAX_INT64):019d}{rng.randint(0, MAX_INT64):019d}"


def new_tid(rng: random.Random) -> str:
    """A transaction ID: base64 of 8 random bytes (12 characters ending in ``=``)."""
    return base64.b64encode(rng.randbytes(8)).decode("ascii")


def normalize_host(value: str | None) -> str | None:
    """Lower-case host name without port or trailing dot; the first one of a comma list; None if empty."""
    if value is None:
        return None
    host = value.split(",", 1)[0].strip().lower()
    if host.startswith("["):  # IPv6 literal, maybe with a port
        end = host.find("]")
        host = host[: end + 1] if end != -1 else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    return host or None


def is_demdex_host(host: str | None) -> bool:
    """``<label>.demdex.net`` with one DNS label in front."""
    if host is None or not host.endswith(DEMDEX_SUFFIX):
        return False
    label = host[: -len(DEMDEX_SUFFIX)]
    return re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", label) is not None


_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def encoding_is_valid(raw: str) -> bool:
    """False when a query or form body is badly percent-encoded (what makes the DCS answer 311).

    Bad: a bare ``%`` or ``%zz``, raw bytes outside printable ASCII, escapes that do not decode as UTF-8.
    """
    if _BAD_PERCENT.search(raw):
        return False
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in raw):
        return False
    try:
        parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def parse_params(raw: str) -> list[tuple[str, str]]:
    """Decode a query string or form body (form rules: ``+`` is a space). Call after :func:`encoding_is_valid`."""
    return parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="replace")


PRIVATE_PLACEHOLDER = "<private>"


def is_private_key(key: str) -> bool:
    return key.startswith("p_")


def redact_params(params: list[tuple[str, str]]) -> list[list[str]]:
    """Params for the call log: ``p_`` values replaced by ``<private>``."""
    return [[k, PRIVATE_PLACEHOLDER if is_private_key(k) else v] for k, v in params]


def redact_raw(raw: str) -> str:
    """A raw query or body for the call log, with every ``p_`` value replaced by ``<private>``."""
    parts = []
    for piece in raw.split("&"):
        key_raw, sep, _value = piece.partition("=")
        key = unquote_plus(key_raw, errors="replace")
        if is_private_key(key):
            parts.append(f"{key_raw}={PRIVATE_PLACEHOLDER}")
        else:
            parts.append(key_raw + sep + _value)
    return "&".join(parts)


def first(params: list[tuple[str, str]], key: str) -> str | None:
    """The first value of ``key``, or None."""
    for k, v in params:
        if k == key:
            return v
    return None


def all_values(params: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in params if k == key]


def split_serialized(values: list[str]) -> list[str]:
    """``k=v1,v2&k=v3`` -> ``[v1, v2, v3]`` (serialized and repeated keys both mean several values)."""
    out: list[str] = []
    for value in values:
        out.extend(value.split(","))
    return out


@dataclass(frozen=True)
class DeclaredId:
    """One ``d_cid`` / ``d_cid_ic`` value, decoded."""

    param: str  # "d_cid" or "d_cid_ic"
    namespace: str  # the normalized namespace key: a data source id, or "ic:<code>" for unknown codes
    source: str  # the data source id or integration code as sent
    id: str
    auth_state: int

    @property
    def key(self) -> str:
        """Identity key used for links, opt-outs, denylists and in-flight tracking."""
        return f"cid:{self.namespace}:{self.id}"

    @property
    def label(self) -> str:
        """How the ID is named in error messages."""
        return f"{self.source}:{self.id}"


def parse_declared(param: str, value: str, ic_to_dpid: dict[str, str]) -> DeclaredId | None:
    """Parse ``<dpid>\\x01<id>[\\x01<authstate>]`` (or an integration code); None when invalid (error 300)."""
    parts = value.split("\x01")
    if len(parts) not in (2, 3):
        return None
    source, uid = parts[0], parts[1]
    auth = parts[2] if len(parts) == 3 else "0"
    if not source or not uid or auth not in ("0", "1", "2"):
        return None
    if param == "d_cid":
        if not source.isascii() or not source.isdigit():
            return None
        namespace = str(int(source))
    else:
        namespace = ic_to_dpid.get(source, f"ic:{source}")
    return DeclaredId(param=param, namespace=namespace, source=source, id=uid, auth_state=int(auth))


def blob_for(mid: str, region: int) -> str:
    """An opaque, URL-safe base64 blob (well under 512 bytes), stable for a (MID, region)."""
    seed = random.Random(f"blob:{mid}:{region}")
    return base64.urlsafe_b64encode(seed.randbytes(36)).decode("ascii").rstrip("=")

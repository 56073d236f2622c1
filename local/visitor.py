"""What Adobe's VisitorAPI.js does in a browser, for the demo page: get an ECID, write the AMCV cookie.

The real library calls the ID service (``dpm.demdex.net/id``) from the browser and stores the
answer in the first-party ``AMCV_<org>`` cookie; the local gateway's ``/_local/visitor`` endpoint
does the same against the DCS simulator, so the page then calls ``/ids`` with a real-looking cookie.

The location hint (``MCAAMLH``) written is the visitor's *home* region: the region the partner
alias lands in for the visitor (the simulator's GSLB region), not the ID service's own region
(which describes whichever data centre served the ``/id`` call).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import requests

VISITOR_API_VERSION = "5.5.0"
ID_SERVICE_HOST = "dpm.demdex.net"
DEFAULT_ID_SYNC_TTL = 604800
DEFAULT_OPTOUT_TTL = 7200
COOKIE_MAX_AGE = 13 * 30 * 86400  # about 13 months, what browsers keep of a script-set cookie


def settings_digest(version: str = VISITOR_API_VERSION, server: str = ID_SERVICE_HOST) -> int:
    """VisitorAPI.js's settings digest: a Java-style 32-bit string hash of ``"<version>|<server>"``."""
    value = 0
    for char in f"{version}|{server}":
        value = (value * 31 + ord(char)) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def cookie_name(org_id: str) -> str:
    """``AMCV_`` + the org ID as ``encodeURIComponent`` writes it (``@`` -> ``%40``)."""
    return "AMCV_" + quote(org_id, safe="")


@dataclass(frozen=True)
class Visitor:
    mid: str
    region: int | None
    blob: str | None
    opted_out: bool


def build_amcv(
    mid: str,
    region: int,
    blob: str,
    *,
    now: float | None = None,
    id_sync_ttl: int = DEFAULT_ID_SYNC_TTL,
    optout_ttl: int = DEFAULT_OPTOUT_TTL,
) -> str:
    """The AMCV cookie value as VisitorAPI.js 5.5.0 writes it (``|`` percent-encoded as ``%7C``)."""
    now = time.time() if now is None else now
    written = int(now)
    fields = [
        str(settings_digest()),
        "MCIDTS",
        str(math.ceil(now / 86400)),
        "MCMID",
        mid,
        f"MCAAMLH-{written + id_sync_ttl}",
        str(region),
        f"MCAAMB-{written + id_sync_ttl}",
        blob,
        f"MCOPTOUT-{written + optout_ttl}s",
        "NONE",
        "vVersion",
        VISITOR_API_VERSION,
    ]
    return quote("|".join(fields), safe="")


def parse_amcv(value: str) -> dict[str, str]:
    """Key -> value of an AMCV cookie value (digest dropped, expiry suffixes removed)."""
    decoded = value
    for _ in range(3):
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    tokens = decoded.split("|")
    if tokens and tokens[0].lstrip("-").isdigit():
        tokens = tokens[1:]
    fields: dict[str, str] = {}
    for key, field_value in zip(tokens[0::2], tokens[1::2], strict=False):
        fields[key.split("-", 1)[0]] = field_value
    return fields


def find_amcv(cookie_header: str | None, org_id: str) -> str | None:
    """The raw AMCV value for ``org_id`` in a Cookie header (name matched percent-decoded)."""
    if not cookie_header:
        return None
    wanted = unquote("AMCV_" + org_id)
    for piece in cookie_header.split(";"):
        name, sep, value = piece.strip().partition("=")
        if sep and unquote(name.strip()) == wanted:
            return value.strip()
    return None


def visitor_from_amcv(value: str) -> Visitor | None:
    fields = parse_amcv(value)
    mid = fields.get("MCMID")
    if not mid or not mid.isdigit() or len(mid) != 38:
        return None
    region = fields.get("MCAAMLH")
    return Visitor(
        mid=mid,
        region=int(region) if region and region.isdigit() else None,
        blob=fields.get("MCAAMB"),
        opted_out=fields.get("MCOPTOUT", "NONE") != "NONE",
    )


class VisitorEmulator:
    """Answers ``/_local/visitor``: the visitor's IDs, minting them (and the cookie) when missing."""

    def __init__(self, simulator_url: str, org_id: str, *, home_region: int = 9, timeout: float = 5) -> None:
        self.simulator_url = simulator_url.rstrip("/")
        self.org_id = org_id
        self.home_region = home_region
        self.timeout = timeout

    def handle(self, cookie_header: str | None) -> tuple[int, list[str], dict[str, Any]]:
        """(status, Set-Cookie headers, JSON body) for a request with this Cookie header."""
        existing = find_amcv(cookie_header, self.org_id)
        visitor = visitor_from_amcv(existing) if existing else None
        if visitor is not None:
            return 200, [], {**visitor.__dict__, "cookie": cookie_name(self.org_id), "source": "cookie"}
        try:
            answer = self.mint()
        except (requests.RequestException, ValueError) as exc:
            return 502, [], {"error": "IdServiceUnavailable", "message": f"the ID service did not answer: {exc}"}
        mid = answer.get("d_mid")
        if not isinstance(mid, str) or len(mid) != 38 or not mid.isdigit():
            return (
                502,
                [],
                {"error": "IdServiceError", "message": "no ECID in the ID service's answer", "answer": answer},
            )
        ttl = _as_int(answer.get("id_sync_ttl"), DEFAULT_ID_SYNC_TTL)
        optout_ttl = _as_int(answer.get("d_ottl"), DEFAULT_OPTOUT_TTL)
        blob = str(answer.get("d_blob") or "")
        value = build_amcv(mid, self.home_region, blob, id_sync_ttl=ttl, optout_ttl=optout_ttl)
        name = cookie_name(self.org_id)
        set_cookies = [
            f"{name}={value}; Path=/; Max-Age={COOKIE_MAX_AGE}; SameSite=Lax",
            f"AMCVS_{quote(self.org_id, safe='')}=1; Path=/; SameSite=Lax",
        ]
        body = {
            "mid": mid,
            "region": self.home_region,
            "blob": blob,
            "opted_out": False,
            "cookie": name,
            "source": "id_service",
            "id_service_region": answer.get("dcs_region"),
        }
        return 200, set_cookies, body

    def mint(self) -> dict[str, Any]:
        """GET ``/id`` on the simulator as the browser would call ``dpm.demdex.net/id``."""
        response = requests.get(
            f"{self.simulator_url}/id",
            params={"d_ver": "2", "d_rtbd": "json", "d_orgid": self.org_id},
            headers={"Host": ID_SERVICE_HOST, "X-Forwarded-Host": ID_SERVICE_HOST},
            timeout=self.timeout,
        )
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("the ID service answered something other than a JSON object")
        return data


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default

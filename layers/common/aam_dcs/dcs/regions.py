"""The fixed DCS region table: the only source of host names the bundle calls.

Host names are never built from input. An unknown region means "call the partner alias".
"""

from __future__ import annotations

from typing import Final

from aam_dcs.json_numbers import json_integer

REGION_HOSTS: Final[dict[int, str]] = {
    3: "apse.demdex.net",
    4: "sae.demdex.net",
    6: "irl1.demdex.net",
    7: "use.demdex.net",
    8: "apse2.demdex.net",
    9: "usw2.demdex.net",
    11: "tyo3.demdex.net",
    12: "ind1.demdex.net",
}

REGION_LOCATIONS: Final[dict[int, str]] = {
    3: "Southeast Asia (Singapore)",
    4: "South America (Sao Paulo)",
    6: "Europe (Dublin)",
    7: "US East (Virginia)",
    8: "Oceania (Sydney)",
    9: "US West (Oregon)",
    11: "Asia (Tokyo)",
    12: "India",
}


def parse_region(value: object) -> int | None:
    """A region ID from a JSON integer or a numeric string, or ``None`` when it is not a known region."""
    region = json_integer(value)
    if region is None and isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 4:
            region = int(text)
    return region if region in REGION_HOSTS else None


def region_host(region_id: int | None, partner_host: str) -> str:
    """The host for a region; the partner alias when the region is unknown or missing."""
    if region_id is None:
        return partner_host
    return REGION_HOSTS.get(region_id, partner_host)

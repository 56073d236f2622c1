"""The resolution order (reference section 8, design "resolve_ids result"): pure, no I/O.

Every source becomes one ``Evidence`` record, highest precedence first:

1. ``request``: explicit ``mid``, ``uuid``, ``region_id``;
2. ``dcs_response``: its ``uuid`` and ``dcs_region`` (an opt-out error 171-173 instead of a UUID);
3. ``amcv``: the AMCV cookie, given as ``amcv`` or inside ``cookies`` (an explicit ``amcv`` wins
   field by field; an opt-out in either counts);
4. ``cookie``: ``s_ecid``, ``kndctr_<org>_identity``, a fresh ``adobe_mc`` (ECID), ``aam_uuid``/``aam_did`` (UUID);
5. ``store``: the profiles table's record;
6. ``id_service``: an ``/id`` answer.

``mid`` and ``uuid`` are each the first one found; ``id_source`` is the source of the first user ID.
The blob is the first one found. Opted out when any source says so; the IDs found are still returned.

Region ranking: the visitor's own region (request, DCS response, AMCV, or a stored region that came
from the visitor) beats the configured default region (``default``), which beats a region learned
from a server-side ``/id`` call (it names the Lambda's data centre, not the visitor's; a fresh answer
before one remembered in the store); with none of these, the partner alias (``partner``,
``region_id`` null) lets the DCS route the call. A stored region counts as the visitor's unless the
record says it came from ``id_service`` (or ``default``/``partner``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from aam_dcs.dcs.regions import parse_region, region_host
from aam_dcs.ids.amcv import AmcvFields, pick_amcv
from aam_dcs.ids.cookies import Cookie, amcv_cookie_name, cookie_values, extract_cookie_ids, parse_cookie_header
from aam_dcs.ids.models import IdentityInput, ResolvedIdentity, Source
from aam_dcs.ids.validation import clean_blob, valid_user_id

# Where a stored region came from when it does not describe the visitor.
SERVER_SIDE_SOURCES: Final[frozenset[Source]] = frozenset({"id_service", "default", "partner"})


class IdentitySettings(Protocol):
    """The settings resolution needs (``aam_dcs.config.Settings`` fits)."""

    @property
    def org_id(self) -> str: ...
    @property
    def default_region(self) -> int | None: ...
    @property
    def partner_host(self) -> str: ...


@dataclass(frozen=True)
class StoredIdentity:
    """A profiles-table record. ``region_source`` says where its region came from, when recorded."""

    mid: str | None = None
    uuid: str | None = None
    region_id: int | None = None
    blob: str | None = None
    opted_out: bool = False
    region_source: Source | None = None


@dataclass(frozen=True)
class IdServiceResult:
    """What an ``/id`` answer says (``d_mid``, ``dcs_region``, ``d_blob``, a non-empty ``d_optout``)."""

    mid: str | None = None
    region_id: int | None = None
    blob: str | None = None
    opted_out: bool = False


@dataclass(frozen=True)
class Evidence:
    """What one source says; ``visitor_region`` is false for a region that describes the server."""

    source: Source
    mid: str | None = None
    uuid: str | None = None
    region_id: int | None = None
    blob: str | None = None
    opted_out: bool = False
    visitor_region: bool = True


def resolve_identity(
    identity: IdentityInput,
    settings: IdentitySettings,
    *,
    cookies: Sequence[Cookie] | None = None,
    stored: StoredIdentity | None = None,
    id_service: IdServiceResult | None = None,
    now: float | None = None,
) -> ResolvedIdentity:
    """The ``resolve_ids`` result from everything known, in precedence order.

    ``cookies`` defaults to ``identity.cookies`` parsed; ``now`` (unix seconds) judges ``adobe_mc``.
    """
    jar = parse_cookie_header(identity.cookies) if cookies is None else cookies
    moment = time.time() if now is None else now
    evidence = collect_evidence(identity, settings.org_id, jar, stored=stored, id_service=id_service, now=moment)
    return combine(evidence, identity, settings)


def needs_id_service(resolved: ResolvedIdentity, mint: bool) -> bool:
    """Call ``/id`` only to mint: asked for (``mint``), no user ID found, and not opted out."""
    return mint and not resolved.has_user_id and not resolved.opted_out


def collect_evidence(
    identity: IdentityInput,
    org_id: str,
    cookies: Sequence[Cookie],
    *,
    stored: StoredIdentity | None,
    id_service: IdServiceResult | None,
    now: float,
) -> list[Evidence]:
    return [
        from_request(identity),
        from_dcs_response(identity),
        from_amcv(identity.amcv, cookie_values(cookies, amcv_cookie_name(org_id))),
        from_cookies(cookies, org_id, now),
        from_store(stored),
        from_id_service(id_service),
    ]


def combine(evidence: Sequence[Evidence], identity: IdentityInput, settings: IdentitySettings) -> ResolvedIdentity:
    region_id, region_source = pick_region(evidence, settings.default_region)
    return ResolvedIdentity(
        mid=next((e.mid for e in evidence if e.mid), None),
        uuid=next((e.uuid for e in evidence if e.uuid), None),
        region_id=region_id,
        region_host=region_host(region_id, settings.partner_host),
        region_source=region_source,
        blob=next((e.blob for e in evidence if e.blob), None),
        opted_out=any(e.opted_out for e in evidence),
        customer_ids=list(identity.customer_ids),
        id_source=next((e.source for e in evidence if e.mid or e.uuid), None),
    )


def pick_region(evidence: Sequence[Evidence], default_region: int | None) -> tuple[int | None, Source]:
    """Visitor's own region, then the default region, then a server-side region, then the partner alias."""
    visitor = next((e for e in evidence if e.region_id is not None and e.visitor_region), None)
    if visitor is not None:
        return visitor.region_id, visitor.source
    default = parse_region(default_region)
    if default is not None:
        return default, "default"
    # A fresh /id answer before a server-side region remembered in the store.
    server = next(
        (e for e in sorted(evidence, key=lambda e: e.source != "id_service") if e.region_id is not None), None
    )
    if server is not None:
        return server.region_id, server.source
    return None, "partner"


# --- one function per source -----------------------------------------------------------------


def from_request(identity: IdentityInput) -> Evidence:
    return Evidence("request", mid=identity.mid, uuid=identity.uuid, region_id=identity.region_id)


def from_dcs_response(identity: IdentityInput) -> Evidence:
    response = identity.dcs_response
    if response is None:
        return Evidence("dcs_response")
    return Evidence(
        "dcs_response",
        uuid=response.uuid,
        region_id=parse_region(response.dcs_region),
        opted_out=response.opted_out,
    )


def from_amcv(explicit: str | None, cookie_amcvs: Sequence[str]) -> Evidence:
    if explicit is None and not cookie_amcvs:  # the common server-to-server call: nothing to parse
        return Evidence("amcv")
    found = [fields for fields in (pick_amcv([explicit]), pick_amcv(cookie_amcvs)) if fields is not None]
    return Evidence(
        "amcv",
        mid=_first_of(found, lambda f: f.mid),
        region_id=_first_of(found, lambda f: f.region_id),
        blob=_first_of(found, lambda f: f.blob),
        opted_out=any(fields.opted_out for fields in found),
    )


def from_cookies(cookies: Sequence[Cookie], org_id: str, now: float) -> Evidence:
    if not cookies:
        return Evidence("cookie")
    ids = extract_cookie_ids(cookies, org_id, now)
    return Evidence("cookie", mid=ids.mid, uuid=ids.aam_uuid)


def from_store(stored: StoredIdentity | None) -> Evidence:
    if stored is None:
        return Evidence("store")
    return Evidence(
        "store",
        mid=valid_user_id(stored.mid),
        uuid=valid_user_id(stored.uuid),
        region_id=parse_region(stored.region_id),
        blob=clean_blob(stored.blob),
        opted_out=stored.opted_out,
        visitor_region=stored.region_source not in SERVER_SIDE_SOURCES,
    )


def from_id_service(result: IdServiceResult | None) -> Evidence:
    if result is None:
        return Evidence("id_service", visitor_region=False)
    return Evidence(
        "id_service",
        mid=valid_user_id(result.mid),
        region_id=parse_region(result.region_id),
        blob=clean_blob(result.blob),
        opted_out=result.opted_out,
        visitor_region=False,
    )


def _first_of[T](found: Sequence[AmcvFields], get: Callable[[AmcvFields], T | None]) -> T | None:
    return next((value for fields in found if (value := get(fields)) is not None), None)

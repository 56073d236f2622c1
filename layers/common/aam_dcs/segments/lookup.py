"""The ``lookup_segments`` use case: the visitor's AAM segments, from the profiles table or the DCS.

In order:

1. the identity is resolved by the shared resolver (``mint`` is ignored: a lookup never mints, a
   fresh ECID has no segments);
2. an opted-out visitor (AMCV ``MCOPTOUT``, a DCS response with 171-173, an opt-out remembered in
   the table) gets ``segments: []`` and ``opted_out: true``, without a DCS call or a cache read
   (``cache: "bypass"``);
3. a visitor with no user ID and no declared ID is refused (``InvalidRequest``, field
   ``identity``): a DCS call without one would mint a new, empty profile every time;
4. with a profiles table, a cached entry younger than ``max_age_seconds`` (and read with the
   configured segment source) is the answer (``cache: "hit"``); ``refresh: true`` skips the read
   (``"bypass"``); otherwise, and always without a table, the DCS is asked (``"miss"``);
5. the DCS call is ``/event`` with the identity only (no signals), ``d_rtbd=json&d_jsonv=1`` and
   ``d_cts=2`` when ``AAM_SEGMENT_SOURCE=cts``, to the visitor's regional host, counted by the
   denylist guard shared with ``send_signals`` (``RateLimited`` past ``AAM_USER_CALLS_PER_MINUTE``,
   with a table; a lookup counts like any other call, since the DCS cannot tell them apart). Its answer:
   171-173 (or 315) mean opted out (remembered, and the cached segments replaced by an opt-out
   record); transient codes (0, 10, 2xx) raise ``DcsUnavailable``; a blocked, denylisted or dropped
   call raises ``DcsRejected``; otherwise the segments are extracted (:mod:`.extract`), cached for
   ``cache_ttl_seconds`` (30 days, so that an outage finds something) and what the DCS taught
   (UUID; the region when the partner alias routed the call) is remembered;
6. a DCS outage (``DcsUnavailable``, ``CircuitOpen`` included, ``DcsTimeout``, ``DcsBadResponse``) or a guard refusal
   (``RateLimited``) with a cached entry of any age answers that entry with ``cache: "stale"`` and
   ``stale: true`` (an additive field, false otherwise); without one, the error propagates
   (502/504/429). The enrichment worker turns the fallback off and lets SQS retry instead.

Metrics: ``SegmentLookups``, ``SegmentCacheHit|Miss|Bypass|Stale``, ``SegmentLookupsOptedOut``,
``DcsCode<code>`` per code answered (plus the resolver's and the guard's).

Segments are cached under one key per visitor: ``mid#`` when the ECID is known, else ``uuid#``,
else the hashed key of the first declared ID. The resolver recalls the other IDs from the table,
so later lookups that carry only some of them find the same entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aam_dcs.config import Settings, get_settings
from aam_dcs.dcs.breaker import get_gateway
from aam_dcs.dcs.http import DcsGateway
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import DcsResponse
from aam_dcs.errors import DcsBadResponse, DcsRejected, DcsTimeout, DcsUnavailable, InvalidRequest, RateLimited
from aam_dcs.ids.learning import learned_from_answer
from aam_dcs.ids.models import IdentityInput, ResolvedIdentity
from aam_dcs.ids.params import identity_params
from aam_dcs.ids.resolver import IdentityResolver, default_resolver, identity_keys
from aam_dcs.observability import metrics
from aam_dcs.segments.extract import CookieFormat, extract_segments
from aam_dcs.segments.models import DEFAULT_MAX_AGE_SECONDS, CacheState, LookupInput, LookupResult
from aam_dcs.signals.guard import CallGuard
from aam_dcs.store.profiles import ProfileStore, SegmentRecord, mid_key, uuid_key

CACHE_TTL_SECONDS: Final = 30 * 24 * 3600
#: Failures answered from a cached entry of any age: the DCS is down, slow or garbled, or the
#: denylist guard refused to call it for this visitor right now.
OUTAGES: Final = (DcsUnavailable, DcsTimeout, DcsBadResponse, RateLimited)
NO_IDENTITY_RULE: Final = (
    "a segment lookup needs mid, uuid, an AMCV or other ID cookie, dcs_response or customer_ids: "
    "without an ID the DCS would create a new, empty profile on every call"
)


@dataclass(frozen=True)
class LookupOutcome:
    """A lookup's answer and the identity as it stands after it (UUID and region learned)."""

    result: LookupResult
    identity: ResolvedIdentity


@dataclass
class SegmentLookup:
    settings: Settings
    resolver: IdentityResolver
    gateway: DcsGateway
    store: ProfileStore | None = None
    clock: Callable[[], float] = field(default=time.time)
    cache_ttl_seconds: int = CACHE_TTL_SECONDS

    @property
    def cookie_format(self) -> CookieFormat:
        return CookieFormat.from_settings(self.settings)

    @property
    def guard(self) -> CallGuard:
        return CallGuard(self.store, self.settings.user_calls_per_minute, self.clock)

    def lookup(self, request: LookupInput) -> LookupResult:
        """The ``lookup_segments`` answer (API and direct invocation)."""
        return self.run(request, max_age_seconds=request.max_age_seconds, refresh=request.refresh).result

    def run(
        self,
        request: IdentityInput,
        *,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        refresh: bool = False,
        serve_stale: bool = True,
    ) -> LookupOutcome:
        """The full lookup; ``serve_stale=False`` lets an outage propagate even with a cached entry."""
        count("SegmentLookups")
        identity = self.resolver.resolve(request.model_copy(update={"mint": False}))
        if identity.opted_out:
            return self._opted_out(identity, cache="bypass", fetched_at=self.clock())
        require_identity(identity)
        key = segments_key(identity)
        cached = None if refresh else self._cached(key)
        if cached is not None and self._fresh(cached, max_age_seconds):
            return self._from_cache(identity, cached, cache="hit")
        try:
            return self._fetch(identity, cache="bypass" if refresh else "miss")
        except OUTAGES:
            stale = self._stale_entry(key, cached, refreshing=refresh) if serve_stale else None
            if stale is None:
                raise
            return self._from_cache(identity, stale, cache="stale")

    # --- the cache -------------------------------------------------------------------------------

    def _cached(self, key: str) -> SegmentRecord | None:
        return self.store.get_segments(key) if self.store is not None else None

    def _stale_entry(self, key: str, cached: SegmentRecord | None, *, refreshing: bool) -> SegmentRecord | None:
        """The cached entry of any age (a refresh did not read it yet)."""
        return self._cached(key) if refreshing else cached

    def _fresh(self, record: SegmentRecord, max_age_seconds: int) -> bool:
        same_source = record.segment_source == self.settings.segment_source
        return same_source and record.age_seconds(self.clock()) < max_age_seconds

    def _from_cache(self, identity: ResolvedIdentity, record: SegmentRecord, *, cache: CacheState) -> LookupOutcome:
        count(f"SegmentCache{cache.capitalize()}")
        known = identity.model_copy(
            update={"uuid": identity.uuid or record.uuid, "region_id": identity.region_id or record.region_id}
        )
        if record.opted_out:
            return self._opted_out(known, cache=cache, fetched_at=record.fetched_at)
        result = build_result(known, list(record.segments), self.settings, cache=cache, fetched_at=record.fetched_at)
        return LookupOutcome(result=result, identity=known)

    def _store(self, identity: ResolvedIdentity, record: SegmentRecord) -> None:
        if self.store is not None:
            self.store.put_segments(segments_key(identity), record, self.cache_ttl_seconds)

    # --- the DCS ---------------------------------------------------------------------------------

    def _fetch(self, identity: ResolvedIdentity, *, cache: CacheState) -> LookupOutcome:
        request = self.dcs_request(identity)
        self.guard.admit(identity)
        response = self.gateway.send(request)
        count_codes(response)
        now = self.clock()
        if response.opted_out:
            return self._dcs_opt_out(identity, now, cache=cache)
        check_usable(response)
        learned = self._learn(identity, response)
        segments = extract_segments(response, self.settings.segment_source, self.cookie_format)
        self._store(learned, self._record(learned, segments, now))
        count(f"SegmentCache{cache.capitalize()}")
        result = build_result(learned, segments, self.settings, cache=cache, fetched_at=now)
        return LookupOutcome(result=result, identity=learned)

    def dcs_request(self, identity: ResolvedIdentity) -> DcsRequest:
        """The lookup call: control keys and the identity, nothing the DCS would record as data."""
        control = [("d_rtbd", "json"), ("d_jsonv", "1")]
        if self.settings.segment_source == "cts":
            control.append(("d_cts", "2"))
        params = control + identity_params(identity, self.settings.org_id)
        return DcsRequest.event(self.settings, params, region_id=identity.region_id)

    def _learn(self, identity: ResolvedIdentity, response: DcsResponse) -> ResolvedIdentity:
        """The identity with the answer's UUID and, when the partner alias routed the call, its region."""
        # Opt-outs are handled before this point (_dcs_opt_out), so only the UUID and region matter here.
        learned = learned_from_answer(
            identity,
            uuid=response.uuid,
            dcs_region=response.dcs_region,
            opted_out=False,
            partner_host=self.settings.partner_host,
        )
        if learned is None:
            return identity
        self.resolver.remember(learned, known=None)
        return learned

    def _dcs_opt_out(self, identity: ResolvedIdentity, now: float, *, cache: CacheState) -> LookupOutcome:
        opted_out = identity.model_copy(update={"opted_out": True})
        self.resolver.remember(opted_out, known=None)
        self._store(opted_out, SegmentRecord((), self.settings.segment_source, now, opted_out=True))
        return self._opted_out(opted_out, cache=cache, fetched_at=now)

    def _record(self, identity: ResolvedIdentity, segments: list[str], now: float) -> SegmentRecord:
        return SegmentRecord(
            segments=tuple(segments),
            segment_source=self.settings.segment_source,
            fetched_at=now,
            uuid=identity.uuid,
            region_id=identity.region_id,
        )

    def _opted_out(self, identity: ResolvedIdentity, *, cache: CacheState, fetched_at: float) -> LookupOutcome:
        count("SegmentLookupsOptedOut")
        result = build_result(identity, [], self.settings, cache=cache, fetched_at=fetched_at, opted_out=True)
        return LookupOutcome(result=result, identity=identity)


def require_identity(identity: ResolvedIdentity) -> None:
    if not identity.has_user_id and not identity.customer_ids:
        raise InvalidRequest("nothing identifies the visitor", field="identity", rule=NO_IDENTITY_RULE)


def segments_key(identity: ResolvedIdentity) -> str:
    """The one key a visitor's segments are cached under: ``mid#``, else ``uuid#``, else ``cid#``."""
    if identity.mid:
        return mid_key(identity.mid)
    if identity.uuid:
        return uuid_key(identity.uuid)
    declared = [key for key in identity_keys(identity) if key.startswith("cid#")]
    if not declared:
        raise InvalidRequest("nothing identifies the visitor", field="identity", rule=NO_IDENTITY_RULE)
    return declared[0]


def check_usable(response: DcsResponse) -> None:
    """Raise when the answer cannot tell the visitor's segments (opt-out is handled before)."""
    if response.transient:
        raise DcsUnavailable(
            "the DCS could not evaluate the visitor's profile; try again later",
            codes=response.transient,
            tid=response.tid,
        )
    if response.discarded:
        raise DcsRejected(
            "the DCS discarded the lookup (blocked, denylisted or dropped)", codes=response.codes, tid=response.tid
        )


def build_result(
    identity: ResolvedIdentity,
    segments: list[str],
    settings: Settings,
    *,
    cache: CacheState,
    fetched_at: float,
    opted_out: bool = False,
) -> LookupResult:
    return LookupResult(
        segments=[] if opted_out else segments,
        segment_source=settings.segment_source,
        cache=cache,
        region_id=identity.region_id,
        uuid=identity.uuid,
        mid=identity.mid,
        opted_out=opted_out,
        fetched_at=iso_utc(fetched_at),
        stale=cache == "stale",
    )


def iso_utc(timestamp: float) -> str:
    """``2026-11-22T10:00:04.123Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def count(name: str) -> None:
    metrics.add_metric(name=name, unit="Count", value=1)


def count_codes(response: DcsResponse) -> None:
    for code in response.codes:
        count(f"DcsCode{code}")


def default_lookup() -> SegmentLookup:
    """The container's lookup, from the settings: the shared resolver and its table, the DCS client."""
    resolver = default_resolver()
    return SegmentLookup(settings=get_settings(), resolver=resolver, gateway=get_gateway(), store=resolver.store)

"""CRM enrichment of one customer: fresh segments, stored, and a ``SegmentsChanged`` event on change.

For each customer the enrichment worker:

1. looks the segments up with ``refresh: true`` (a CRM enrichment wants the DCS's answer, not the
   cache) and without the stale fallback: a DCS outage raises, so the message is retried. The
   lookup itself refreshes the visitor's cache entry (segments, ``fetched_at``, ``updated_at``);
2. compares them with the *announced baseline*: the segments of the last ``SegmentsChanged``
   event for this customer, an item of its own in the profiles table (``enriched#<visitor key>``,
   sort key ``segments``). It is not the cache entry, which landing-page lookups rewrite without
   announcing anything: comparing with the cache would hide every change a page view saw first;
3. when they differ, puts one ``SegmentsChanged`` event (source ``aam-dcs``) and then records the
   new baseline. A first enrichment counts as a change only when the customer has segments (an
   empty first answer announces nothing). The event goes out before the baseline is written, so a
   failure in between repeats the event on retry: delivery is at least once, never lost;
4. an unchanged baseline is rewritten only when older than ``baseline_refresh_seconds`` (to keep
   its TTL alive): a steady run costs one read.

An opted-out customer raises ``VisitorOptedOut`` (the worker dead-letters it). Event details carry
the visitor's MID, UUID and region and the *hashed* keys of its declared IDs, never raw customer IDs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aam_dcs.errors import AamDcsError
from aam_dcs.ids.models import IdentityInput, ResolvedIdentity
from aam_dcs.ids.resolver import identity_keys
from aam_dcs.jobs.events import DomainEvent, EventSink
from aam_dcs.observability import metrics
from aam_dcs.segments.lookup import LookupOutcome, SegmentLookup, segments_key
from aam_dcs.store.profiles import ProfileStore, SegmentRecord

SEGMENTS_CHANGED: Final = "SegmentsChanged"
BASELINE_PREFIX: Final = "enriched#"
BASELINE_TTL_SECONDS: Final = 400 * 24 * 3600
BASELINE_REFRESH_SECONDS: Final = 30 * 24 * 3600


class VisitorOptedOut(AamDcsError):
    """The customer opted out: nothing is looked up or announced for them."""

    http_status = 409


@dataclass(frozen=True)
class SegmentChange:
    """The segments now, and what was added and removed since the announced baseline."""

    segments: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    first: bool

    @classmethod
    def between(cls, baseline: SegmentRecord | None, segments: Sequence[str]) -> SegmentChange:
        before = baseline.segments if baseline is not None else ()
        return cls(
            segments=tuple(segments),
            added=tuple(s for s in segments if s not in before),
            removed=tuple(s for s in before if s not in segments),
            first=baseline is None,
        )

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


@dataclass
class SegmentEnricher:
    lookup: SegmentLookup
    store: ProfileStore
    events: EventSink | None = None
    clock: Callable[[], float] = field(default=time.time)
    baseline_ttl_seconds: int = BASELINE_TTL_SECONDS
    baseline_refresh_seconds: int = BASELINE_REFRESH_SECONDS

    def enrich(self, request: IdentityInput) -> SegmentChange:
        outcome = self.lookup.run(request, refresh=True, serve_stale=False)
        if outcome.result.opted_out:
            metrics.add_metric(name="EnrichmentOptedOut", unit="Count", value=1)
            raise VisitorOptedOut("the customer opted out")
        key = baseline_key(outcome.identity)
        baseline = self.store.get_segments(key)
        change = SegmentChange.between(baseline, outcome.result.segments)
        if change.changed:
            self._announce(change, outcome)
        if change.changed or self._needs_refresh(baseline):
            self.store.put_segments(key, self._baseline(change, outcome), self.baseline_ttl_seconds)
        metrics.add_metric(name="EnrichmentChanged" if change.changed else "EnrichmentUnchanged", unit="Count", value=1)
        return change

    def _announce(self, change: SegmentChange, outcome: LookupOutcome) -> None:
        if self.events is None:
            return
        self.events.put([segments_changed_event(change, outcome)])
        metrics.add_metric(name="SegmentsChangedEvents", unit="Count", value=1)

    def _needs_refresh(self, baseline: SegmentRecord | None) -> bool:
        return baseline is not None and baseline.age_seconds(self.clock()) >= self.baseline_refresh_seconds

    def _baseline(self, change: SegmentChange, outcome: LookupOutcome) -> SegmentRecord:
        return SegmentRecord(
            segments=change.segments,
            segment_source=outcome.result.segment_source,
            fetched_at=self.clock(),
            uuid=outcome.identity.uuid,
            region_id=outcome.identity.region_id,
        )


def baseline_key(identity: ResolvedIdentity) -> str:
    return f"{BASELINE_PREFIX}{segments_key(identity)}"


def segments_changed_event(change: SegmentChange, outcome: LookupOutcome) -> DomainEvent:
    identity = outcome.identity
    detail: dict[str, Any] = {
        "added": list(change.added),
        "removed": list(change.removed),
        "segments": list(change.segments),
        "segment_source": outcome.result.segment_source,
        "first_lookup": change.first,
        "fetched_at": outcome.result.fetched_at,
        "identity": {
            "mid": identity.mid,
            "uuid": identity.uuid,
            "region_id": identity.region_id,
            "customer_keys": [key for key in identity_keys(identity) if key.startswith("cid#")],
        },
    }
    return DomainEvent(detail_type=SEGMENTS_CHANGED, detail=detail)

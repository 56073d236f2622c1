"""Builders for lookup_segments tests: a lookup and an enrichment worker wired to fakes, contexts, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aam_dcs.config import Settings, settings_from_env
from aam_dcs.ids.resolver import IdentityResolver
from aam_dcs.jobs.events import InMemoryEventSink
from aam_dcs.observability import metrics
from aam_dcs.segments.enrich import SegmentEnricher
from aam_dcs.segments.enrich_worker import EnrichmentWorker
from aam_dcs.segments.lookup import SegmentLookup
from aam_dcs.store.memory import InMemoryProfileStore
from tests.support.fakes import FakeDcs

ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"
UUID = "22920112968019678612904394744954398990"
OTHER_UUID = "33920112968019678612904394744954398991"
AMCV = f"1585540135|MCMID|{MID}|MCAAMLH-1728004800|9|MCOPTOUT-1727407200s|NONE"
OPTED_OUT_AMCV = f"1585540135|MCMID|{MID}|MCAAMLH-1728004800|9|MCOPTOUT-1727407200s|true"
NOW = 1_800_000_000.0


def bundle_settings(**env: str) -> Settings:
    return settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG, **env})


def stuff_answer(*segments: str, uuid: str = UUID, region: int = 9, cookie: str = "aam_seg") -> dict[str, Any]:
    """A DCS answer whose cookie destination carries ``segs=<segments>``."""
    stuff = [{"cn": cookie, "cv": "segs=" + ",".join(segments), "ttl": 30, "dmn": "aam-api.com"}] if segments else []
    return {"stuff": stuff, "uuid": uuid, "dcs_region": region, "tid": "AbCdEfGhIjk="}


@dataclass
class Clock:
    """A settable clock for the store, the resolver and the lookup."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LookupKit:
    """A lookup over fakes: the scripted DCS, an in-memory table, a settable clock."""

    settings: Settings = field(default_factory=bundle_settings)
    dcs: FakeDcs = field(default_factory=FakeDcs)
    clock: Clock = field(default_factory=Clock)
    with_store: bool = True
    store: InMemoryProfileStore | None = field(init=False)
    lookup: SegmentLookup = field(init=False)

    def __post_init__(self) -> None:
        self.store = InMemoryProfileStore(clock=self.clock) if self.with_store else None
        resolver = IdentityResolver(settings=self.settings, store=self.store, clock=self.clock)
        self.lookup = SegmentLookup(
            settings=self.settings, resolver=resolver, gateway=self.dcs, store=self.store, clock=self.clock
        )

    def enrichment_worker(self, planner: Callable[[], Any] | None = None) -> tuple[EnrichmentWorker, InMemoryEventSink]:
        assert self.store is not None
        events = InMemoryEventSink()
        enricher = SegmentEnricher(lookup=self.lookup, store=self.store, events=events, clock=self.clock)
        return EnrichmentWorker(enricher=enricher, planner=planner or _no_planner), events


def _no_planner() -> Any:
    raise AssertionError("no planner in this test")


class CountdownContext:
    """A Lambda context whose remaining time drops by ``step_ms`` at every look."""

    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:test-function"

    def __init__(self, remaining_ms: int, step_ms: int = 0, request_id: str = "req-0001") -> None:
        self.remaining_ms = remaining_ms
        self.step_ms = step_ms
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        remaining = self.remaining_ms
        self.remaining_ms -= self.step_ms
        return remaining


def enrich_body(request: dict[str, Any]) -> str:
    return json.dumps({"kind": "enrich_segments", "request": request})


class MetricCounts:
    """Sums of the Powertools metrics added since the last reset."""

    def __getitem__(self, name: str) -> float:
        entry = metrics.metric_set.get(name)
        return float(sum(entry["Value"])) if entry else 0.0


@contextmanager
def counted_metrics() -> Iterator[MetricCounts]:
    metrics.clear_metrics()
    try:
        yield MetricCounts()
    finally:
        metrics.clear_metrics()

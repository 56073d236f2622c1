"""The ``send_signals`` use case: send now (``sync``), or validate, resolve and queue (``async``).

Synchronous send, in order:

1. the data (signals, trait IDs; declared IDs count as data) is validated, and a request with
   nothing to send is refused (``InvalidRequest``, field ``signals``);
2. the identity is resolved by the shared resolver; an opted-out visitor gets
   ``skipped_opted_out`` and no call is made; a visitor nothing identifies is refused;
3. the ``/event`` call is built for the visitor's regional host (size rules checked);
4. ``dry_run``: the masked URL comes back (status ``dry_run``), no call;
5. the denylist guard counts the call (``RateLimited`` past the cap);
6. the DCS is called once (a signal call that got an answer, or may have reached the DCS, is never
   retried here: ``DcsTimeout`` is a 504; a host whose circuit breaker is open is not called at all:
   ``CircuitOpen``, a 503) and its answer read (:mod:`aam_dcs.signals.outcome`);
7. what the DCS taught (UUID, region, opt-out) is remembered; segments are extracted when asked.

Asynchronous send runs steps 1-4 the same way, so bad input is a 400 now and not a dead letter
later, then queues one message (:mod:`aam_dcs.signals.messages`) and answers ``queued``.
The queue worker (:mod:`aam_dcs.signals.worker`) later runs steps 5-7 through :meth:`deliver`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from aam_dcs.config import Settings, get_settings
from aam_dcs.dcs.breaker import get_gateway
from aam_dcs.dcs.http import DcsGateway
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import DcsResponse
from aam_dcs.errors import DcsError, FeatureDisabled
from aam_dcs.ids.models import ResolvedIdentity
from aam_dcs.ids.resolver import IdentityResolver, default_resolver, identity_keys
from aam_dcs.ids.sources import StoredIdentity
from aam_dcs.jobs.signal_queue import SignalQueue, SqsSignalQueue
from aam_dcs.observability import fingerprint, logger, metrics
from aam_dcs.segments.extract import CookieFormat, extract_segments
from aam_dcs.signals.guard import CallGuard
from aam_dcs.signals.messages import build_message, message_group
from aam_dcs.signals.models import SendSignalsInput, SendSignalsResult
from aam_dcs.signals.outcome import Delivery, interpret, learned_identity
from aam_dcs.signals.wire import data_params, event_request, masked_url
from aam_dcs.store.profiles import ProfileStore

SegmentExtractor = Callable[[DcsResponse], list[str]]


@dataclass(frozen=True)
class PreparedCall:
    """A validated request, its resolved identity, the visitor's group key and the DCS call."""

    request: SendSignalsInput
    resolved: ResolvedIdentity
    visitor: str
    dcs_request: DcsRequest


@dataclass
class SignalSender:
    settings: Settings
    resolver: IdentityResolver
    gateway: DcsGateway
    store: ProfileStore | None = None
    queue: SignalQueue | None = None
    clock: Callable[[], float] = field(default=time.time)
    segments: SegmentExtractor | None = None

    @property
    def guard(self) -> CallGuard:
        return CallGuard(self.store, self.settings.user_calls_per_minute, self.clock)

    def send(self, request: SendSignalsInput) -> SendSignalsResult:
        prepared = self.prepare(request)
        if isinstance(prepared, SendSignalsResult):
            return prepared
        if request.dry_run:
            return self._dry_run(prepared)
        if request.mode == "async":
            return self._enqueue(prepared)
        return self._send_now(prepared)

    def prepare(self, request: SendSignalsInput) -> PreparedCall | SendSignalsResult:
        """Steps 1-3; an opted-out visitor's answer instead of a call."""
        data = data_params(request)
        resolved = self.resolver.resolve(request)
        if resolved.opted_out:
            count("SignalsSkippedOptedOut")
            return SendSignalsResult(status="skipped_opted_out", region_id=resolved.region_id, opted_out=True)
        visitor = message_group(resolved)
        dcs_request = event_request(request, resolved, self.settings, data=data)
        return PreparedCall(request, resolved, visitor, dcs_request)

    def deliver(self, call: PreparedCall) -> tuple[Delivery, DcsResponse]:
        """Steps 5-6: guard, one DCS call, its answer. DCS errors are counted and raised."""
        self.guard.admit(call.resolved)
        try:
            response = self.gateway.send(call.dcs_request)
        except DcsError as error:
            count_error(error)
            raise
        delivery = interpret_counted(response)
        log_delivery(call, delivery)
        return delivery, response

    def learn(self, call: PreparedCall, delivery: Delivery) -> ResolvedIdentity:
        """Step 7: remember what the DCS taught; the identity as it now stands."""
        learned = learned_identity(call.resolved, delivery, self.settings.partner_host)
        if learned is None:
            return call.resolved
        self.resolver.remember(learned, known=self._stored(call.resolved))
        return learned

    def _stored(self, resolved: ResolvedIdentity) -> StoredIdentity | None:
        """The stored record a region read back from the store came from (it keeps its origin)."""
        if self.store is None or resolved.region_source != "store":
            return None
        return self.store.get_identity(identity_keys(resolved))

    def _send_now(self, call: PreparedCall) -> SendSignalsResult:
        try:
            delivery, response = self.deliver(call)
        except DcsError:
            count("SignalsFailed")
            raise
        identity = self.learn(call, delivery)
        count(f"Signals{delivery.status.capitalize()}")
        segments = self._segments(delivery, response) if call.request.return_segments else None
        return delivery.result(identity.region_id, segments)

    def _segments(self, delivery: Delivery, response: DcsResponse) -> list[str]:
        """The visitor's segments as the answer lists them; none when the DCS kept nothing."""
        if delivery.status != "sent" or self.segments is None:
            return []
        return self.segments(response)

    def _dry_run(self, call: PreparedCall) -> SendSignalsResult:
        count("SignalsDryRun")
        return SendSignalsResult(
            status="dry_run", region_id=call.resolved.region_id, request=masked_url(call.dcs_request)
        )

    def _enqueue(self, call: PreparedCall) -> SendSignalsResult:
        queue = self._require_queue()
        queue.send(build_message(call.request, call.resolved, now=self.clock()))
        count("SignalsQueued")
        logger.info("signals queued", extra={"visitor": fingerprint(call.visitor)})
        return SendSignalsResult(status="queued", region_id=call.resolved.region_id)

    def _require_queue(self) -> SignalQueue:
        if self.queue is None:
            raise FeatureDisabled(
                "asynchronous sending needs a signal queue: SIGNAL_QUEUE_URL is not set", setting="SIGNAL_QUEUE_URL"
            )
        return self.queue


def interpret_counted(response: DcsResponse) -> Delivery:
    for code in response.codes:
        count(f"DcsCode_{code}")
    try:
        return interpret(response)
    except DcsError as error:
        count_error(error)
        raise


def count(name: str) -> None:
    metrics.add_metric(name=name, unit="Count", value=1)


def count_error(error: DcsError) -> None:
    count(f"DcsError_{type(error).__name__}")
    for code in error.codes:
        count(f"DcsCode_{code}")


def log_delivery(call: PreparedCall, delivery: Delivery) -> None:
    """One line per answered call: ``tid`` for Adobe support, never an ID or a consent string."""
    logger.info(
        "DCS answered a signal call",
        extra={
            "status": delivery.status,
            "tid": delivery.tid,
            "codes": delivery.codes,
            "dcs_host": call.dcs_request.target_host,
            "visitor": fingerprint(call.visitor),
        },
    )


def default_segments(settings: Settings) -> SegmentExtractor:
    """Segments read exactly as ``lookup_segments`` reads them (``stuff`` or ``d_cts``)."""
    cookie_format = CookieFormat.from_settings(settings)
    return partial(extract_segments, source=settings.segment_source, cookie_format=cookie_format)


def default_sender() -> SignalSender:
    """The container's use case, from the settings: table, queue and DCS client as configured."""
    settings = get_settings()
    resolver = default_resolver()
    queue = SqsSignalQueue(settings.signal_queue_url) if settings.signal_queue_url else None
    return SignalSender(
        settings=settings,
        resolver=resolver,
        gateway=get_gateway(),
        store=resolver.store,
        queue=queue,
        segments=default_segments(settings),
    )

"""The signal queue worker: one DCS call per queued message, none lost, none sent twice on redelivery.

Each batch goes through the shared FIFO worker (:func:`aam_dcs.jobs.worker.process_fifo_batch`):
one thread per visitor (message group), in order within a group. For each message:

1. parse and validate it again; an invalid message is a ``PermanentFailure`` (dead-lettered with
   its reason), as is a call that can no longer be built, or a visitor who opted out meanwhile;
2. run the delivery (denylist guard, the DCS call, its answer) once per key through the
   idempotency store: key = the message group (the visitor) and ``event_id``, else the SQS message
   ID (it stays the same across redeliveries; a replayed dead letter carries its original's ID),
   so a redelivered or replayed message that was already delivered is answered from the store and
   makes no call. Without ``event_id`` a second, identical message sent later is a new call:
   content alone does not make two events the same one;
3. remember what the DCS taught; a ``discarded`` answer (311, opt-out, denylisted, blocked) is a
   ``PermanentFailure`` with the reason, codes and ``tid``; ``DcsRejected`` too.

Anything else is retried by SQS: ``DcsUnavailable``, ``DcsBadResponse``, ``DcsTimeout`` (the DCS
may have processed the call: counted in ``PossibleDuplicates``), ``RateLimited`` (the visitor
waits in the queue until the guard's window ends), a delivery still marked in progress, or an
unexpected error. The retried messages (and the later messages of their group, which the FIFO
worker skipped) are made visible again after a backoff that grows with ``ApproximateReceiveCount``;
at the last of the queue's ``maxReceiveCount`` receives (``AAM_MAX_RECEIVES``) a message that still
fails, or is still held back by its group, is dead-lettered with the reason ``retries_exhausted``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.errors import DcsBadResponse, DcsError, DcsRejected, InvalidRequest, RateLimited
from aam_dcs.jobs.deadletter import SqsDeadLetters, original_message_id
from aam_dcs.jobs.idempotency import DeliveryInProgress, Idempotency, NoIdempotency, PowertoolsIdempotency
from aam_dcs.jobs.retries import Backoff, process_with_backoff, retry_delay
from aam_dcs.jobs.signal_queue import SignalQueue
from aam_dcs.jobs.worker import DeadLetters, PermanentFailure, message_body
from aam_dcs.observability import fingerprint, logger
from aam_dcs.signals.messages import KIND, QueuedSignals, parse_message
from aam_dcs.signals.outcome import Delivery
from aam_dcs.signals.send import PreparedCall, SignalSender, count
from aam_dcs.signals.wire import event_request

#: A handler for the other kinds of message on the queue (a batch job's ``continue_job``):
#: called with the message body and the Lambda context.
KindHandler = Callable[[dict[str, Any], Any], None]


@dataclass
class SignalWorker:
    sender: SignalSender
    idempotency: Idempotency = field(default_factory=NoIdempotency)
    queue: SignalQueue | None = None
    dead_letters: DeadLetters | None = None
    backoff: Backoff = field(default_factory=Backoff)
    other_kinds: Mapping[str, KindHandler] = field(default_factory=dict)
    max_parallel_groups: int = 10
    #: the queue's maxReceiveCount: at a message's last receive, the DLQ gets it with a reason
    max_receives: int | None = None

    def process(self, event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
        """An SQS FIFO batch; the answer is Lambda's partial batch response."""
        self.idempotency.register(context)
        return process_with_backoff(
            event,
            context,
            lambda record, delays: self.handle(record, delays, context),
            queue=self.queue,
            backoff=self.backoff,
            dead_letters=self.dead_letters,
            max_parallel_groups=self.max_parallel_groups,
            max_receives=self.max_receives,
        )

    def handle(self, record: SQSRecord, delays: dict[str, int] | None = None, context: Any = None) -> None:
        """One message; a retryable failure records its delay in ``delays`` and re-raises."""
        try:
            self._route(record, context)
        except PermanentFailure as failure:
            log_permanent(record, failure)
            raise
        except Exception as error:
            count("SignalRetries")
            delay = self._retry_delay(record, error)
            if delays is not None:
                delays[record.message_id] = delay
            logger.warning(
                "signal message failed: retried after the delay, dead-lettered if this was its last receive",
                extra={"error": type(error).__name__, "delay_seconds": delay, "message_id": record.message_id},
            )
            raise

    def _route(self, record: SQSRecord, context: Any) -> None:
        kind = _kind(record.body)
        if kind == KIND:
            self._send(record)
            return
        handler = self.other_kinds.get(str(kind))
        if handler is None:
            raise PermanentFailure("invalid_message", field="kind", rule=f"unknown message kind {str(kind)[:40]!r}")
        handler(json.loads(record.body), context)

    def _send(self, record: SQSRecord) -> None:
        message = _parse(record)
        call = self._prepare(message)
        delivery = self._deliver_once(record, message, call)
        self.sender.learn(call, delivery)
        count(f"Signals{delivery.status.capitalize()}")
        if delivery.status == "discarded":
            raise PermanentFailure(
                delivery.reason or "discarded",
                codes=delivery.codes,
                tid=delivery.tid,
                event_id=message.request.event_id,
            )

    def _prepare(self, message: QueuedSignals) -> PreparedCall:
        request = message.request
        try:
            prepared = self.sender.prepare(request)
            if isinstance(prepared, PreparedCall) and message.blob and not prepared.resolved.blob:
                prepared = self._with_blob(prepared, message.blob)
        except InvalidRequest as invalid:
            raise PermanentFailure("invalid_request", **invalid.details) from None
        if not isinstance(prepared, PreparedCall):
            raise PermanentFailure("opted_out", event_id=request.event_id)
        return prepared

    def _with_blob(self, call: PreparedCall, blob: str) -> PreparedCall:
        """The blob queued with the message, when the resolution found none (no table)."""
        resolved = call.resolved.model_copy(update={"blob": blob})
        dcs_request = event_request(call.request, resolved, self.sender.settings)
        return PreparedCall(call.request, resolved, call.visitor, dcs_request)

    def _deliver_once(self, record: SQSRecord, message: QueuedSignals, call: PreparedCall) -> Delivery:
        ran = False

        def work() -> dict[str, Any]:
            nonlocal ran
            ran = True
            delivery, _ = self.sender.deliver(call)
            return delivery.to_dict()

        # The message's own group, not a fresh resolution: the key must not change between deliveries.
        visitor = record.attributes.message_group_id or call.visitor
        key = f"{visitor}#{message.request.event_id or 'msg:' + original_message_id(record)}"
        try:
            stored = self.idempotency.run(key, work)
        except DcsRejected as rejected:
            raise PermanentFailure("rejected_by_dcs", codes=rejected.codes, tid=rejected.tid) from None
        except DcsError as error:
            if error.details.get("may_have_processed") or isinstance(error, DcsBadResponse):
                count("PossibleDuplicates")
            raise
        except DeliveryInProgress:
            count("DeliveriesInProgress")
            raise
        if not ran:
            count("SignalsAlreadyDelivered")
        return Delivery.from_dict(stored)

    def _retry_delay(self, record: SQSRecord, error: Exception) -> int:
        if isinstance(error, RateLimited):
            count("DenylistGuardWaits")
        return retry_delay(error, record, self.backoff)


def _kind(body: str) -> object:
    return message_body(body).get("kind")


def _parse(record: SQSRecord) -> QueuedSignals:
    try:
        return parse_message(record.body)
    except InvalidRequest as invalid:
        raise PermanentFailure("invalid_message", **invalid.details) from None


def log_permanent(record: SQSRecord, failure: PermanentFailure) -> None:
    group = record.attributes.message_group_id or ""
    details = {k: v for k, v in failure.details.items() if k in {"codes", "tid", "field", "rule"}}
    logger.warning(
        "signal message dead-lettered",
        extra={"reason": failure.reason, "message_id": record.message_id, "visitor": fingerprint(group), **details},
    )


def default_worker(sender: SignalSender, other_kinds: Mapping[str, KindHandler] | None = None) -> SignalWorker:
    """The container's worker: idempotency on the profiles table, delays and dead letters on the queues.

    No ``PROFILES_TABLE``: no idempotency (a redelivered message calls the DCS again). No
    ``SIGNAL_DLQ_URL``: permanent failures are retried until SQS redrives them.
    """
    settings = sender.settings
    table = settings.profiles_table
    return SignalWorker(
        sender=sender,
        idempotency=PowertoolsIdempotency(table) if table else NoIdempotency(),
        queue=sender.queue,
        dead_letters=SqsDeadLetters(settings.signal_dlq_url) if settings.signal_dlq_url else None,
        other_kinds=dict(other_kinds or {}),
        max_receives=settings.max_receives,
    )

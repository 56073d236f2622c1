"""A circuit breaker per DCS host, in front of the container's DCS client.

When a host keeps failing, waiting for it costs every caller a full timeout and retry budget
(seconds of billed Lambda time) and adds load to a DCS that is already struggling. The breaker
remembers the failures and answers at once instead:

- **closed**: calls go through. ``AAM_BREAKER_FAILURES`` outages in a row (``DcsUnavailable``:
  no connection, 5xx or 429 after the retry budget; ``DcsTimeout``) open it. Any answer resets
  the count, including a refusal (``DcsRejected``), a garbled body (``DcsBadResponse``) and error
  codes in a 200 body: the DCS is up, the request is at fault;
- **open**: calls fail at once with ``CircuitOpen`` (a ``DcsUnavailable``: 503 with
  ``Retry-After`` through the API, stale segments from ``lookup_segments``, a retry later from the
  queue workers) for ``AAM_BREAKER_OPEN_SECONDS``;
- **half-open**: the first call after that interval is a trial; the others still fail at once.
  Its answer closes the breaker; another outage opens it for a new interval.

Each host (regional host, partner alias, ID-service host) has its own breaker, and each container
its own breakers: a container learns of an outage from its own calls. Queueing (``"mode": "async"``)
never calls the DCS, so it never meets a breaker.

Cost on the warm path: a dictionary look-up and two attribute reads while closed with no failures;
the lock and the one monotonic clock read happen only on failures and while open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum
from time import monotonic
from typing import Final

from aam_dcs.config import Settings, get_settings
from aam_dcs.dcs.http import DcsClient, DcsGateway, get_client
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import DcsResponse, IdServiceResponse
from aam_dcs.errors import CircuitOpen, DcsError, DcsTimeout, DcsUnavailable
from aam_dcs.observability import logger, metrics

Clock = Callable[[], float]

#: What counts against a host: it gave no usable answer at all.
OUTAGES: Final = (DcsUnavailable, DcsTimeout)
#: ``Retry-After`` while a trial call is in flight (it ends within one timeout and retry budget).
TRIAL_RETRY_AFTER: Final = 1.0


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """One host's breaker. Thread-safe: every change happens under its lock.

    The warm path reads ``state`` and ``failures`` without the lock: a call that races a change
    either ran just before it or just after, which is all the breaker promises.
    """

    def __init__(self, host: str, *, failure_threshold: int, open_seconds: float, clock: Clock = monotonic) -> None:
        self.host = host
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.state = State.CLOSED
        self.failures = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0

    def admit(self) -> bool:
        """Let a call through (``True`` when it is the trial call), or raise ``CircuitOpen``."""
        if self.state is State.CLOSED:
            return False
        with self._lock:
            refusal, trial = self._admit_locked()
        if refusal is not None:
            count("DcsCallsShortCircuited")
            raise refusal
        if trial:
            self._announce(State.HALF_OPEN)
        return trial

    def record_answer(self, *, trial: bool) -> None:
        """The host answered: a trial closes the breaker; a closed breaker forgets its failures."""
        if not trial and self.failures == 0:
            return
        with self._lock:
            closed = self._answer_locked(trial)
        if closed:
            self._announce(State.CLOSED)

    def record_outage(self, *, trial: bool) -> None:
        """The host gave no answer: count it, and open the breaker at the threshold (or after a trial)."""
        with self._lock:
            opened = self._outage_locked(trial)
        if opened:
            self._announce(State.OPEN)

    def release(self, *, trial: bool) -> None:
        """The call ended without telling anything about the host: the next call may be the trial."""
        if not trial:
            return
        with self._lock:
            if self.state is State.HALF_OPEN:
                self.state = State.OPEN

    def _admit_locked(self) -> tuple[CircuitOpen | None, bool]:
        if self.state is State.CLOSED:
            return None, False
        if self.state is State.HALF_OPEN:
            return self._refusal("a trial call to it is in flight", TRIAL_RETRY_AFTER), False
        wait = self._open_until - self._clock()
        if wait > 0:
            return self._refusal(f"calls to it are paused for up to {self.open_seconds:g} s", wait), False
        self.state = State.HALF_OPEN
        return None, True

    def _answer_locked(self, trial: bool) -> bool:
        if trial and self.state is State.HALF_OPEN:
            self.state, self.failures = State.CLOSED, 0
            return True
        if self.state is State.CLOSED:
            self.failures = 0
        return False  # a call admitted before the breaker opened tells nothing about now

    def _outage_locked(self, trial: bool) -> bool:
        if trial and self.state is State.HALF_OPEN:
            return self._open_locked()
        if self.state is not State.CLOSED:
            return False
        self.failures += 1
        return self.failures >= self.failure_threshold and self._open_locked()

    def _open_locked(self) -> bool:
        self.state = State.OPEN
        self._open_until = self._clock() + self.open_seconds
        return True

    def _refusal(self, why: str, retry_after: float) -> CircuitOpen:
        return CircuitOpen(
            f"the DCS host {self.host} failed {self.failure_threshold} calls in a row; {why}",
            dcs_host=self.host,
            retry_after=retry_after,
        )

    def _announce(self, state: State) -> None:
        """One log line and one metric per change; hosts and counts only, never a visitor's ID."""
        fields = {"dcs_host": self.host, "breaker_state": state.value, "failures": self.failures}
        if state is State.OPEN:
            count("DcsCircuitOpened")
            logger.warning("DCS circuit opened", extra=fields | {"open_seconds": self.open_seconds})
        elif state is State.CLOSED:
            count("DcsCircuitClosed")
            logger.info("DCS circuit closed", extra=fields)
        else:
            logger.info("DCS circuit half-open: one trial call goes through", extra=fields)


class BreakerBoard:
    """The container's breakers, one per DCS host, made on first use (the hosts are a fixed, small set)."""

    def __init__(self, *, failure_threshold: int, open_seconds: float, clock: Clock = monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = monotonic) -> BreakerBoard:
        return cls(failure_threshold=settings.breaker_failures, open_seconds=settings.breaker_open_seconds, clock=clock)

    def breaker_for(self, host: str) -> CircuitBreaker:
        breaker = self._breakers.get(host)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.get(host) or self._new_breaker(host)
        return breaker

    def _new_breaker(self, host: str) -> CircuitBreaker:
        breaker = CircuitBreaker(
            host, failure_threshold=self.failure_threshold, open_seconds=self.open_seconds, clock=self.clock
        )
        self._breakers[host] = breaker
        return breaker


class CircuitBreakerGateway:
    """A ``DcsGateway`` that asks the host's breaker before each call and tells it how the call went."""

    def __init__(self, inner: DcsGateway, board: BreakerBoard) -> None:
        self.inner = inner
        self.board = board

    def send(self, request: DcsRequest) -> DcsResponse:
        return self._guarded(request, self.inner.send)

    def send_id(self, request: DcsRequest) -> IdServiceResponse:
        return self._guarded(request, self.inner.send_id)

    def _guarded[R](self, request: DcsRequest, call: Callable[[DcsRequest], R]) -> R:
        breaker = self.board.breaker_for(request.target_host)
        trial = breaker.admit()
        try:
            answer = call(request)
        except OUTAGES:
            breaker.record_outage(trial=trial)
            raise
        except DcsError:
            breaker.record_answer(trial=trial)  # refused or garbled, but the host answered
            raise
        except BaseException:
            breaker.release(trial=trial)
            raise
        breaker.record_answer(trial=trial)
        return answer


class _GatewayHolder:
    gateway: CircuitBreakerGateway | None = None
    lock = threading.Lock()


def get_gateway() -> CircuitBreakerGateway:
    """The container's gateway: its DCS client (``get_client``) behind its breakers.

    A new client (``reset_client``, after a settings change) gets new breakers with the settings.
    """
    client = get_client()
    gateway = _GatewayHolder.gateway
    if gateway is None or gateway.inner is not client:
        with _GatewayHolder.lock:
            gateway = _GatewayHolder.gateway
            if gateway is None or gateway.inner is not client:
                gateway = _GatewayHolder.gateway = _breaker_gateway(client)
    return gateway


def _breaker_gateway(client: DcsClient) -> CircuitBreakerGateway:
    # ``monotonic`` is read here, not bound as a default, so that tests can give the container a clock.
    return CircuitBreakerGateway(client, BreakerBoard.from_settings(get_settings(), clock=monotonic))


def count(name: str) -> None:
    metrics.add_metric(name=name, unit="Count", value=1)

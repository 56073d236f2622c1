"""The DCS client: URL and headers for a :class:`DcsRequest`, the HTTP status, the body.

``DcsClient.send`` (``/event``) and ``DcsClient.send_id`` (``/id``) return the parsed answer
or raise a typed error:

- ``DcsTimeout``: no answer in time (``may_have_processed`` says whether the DCS may still
  have recorded the call); ``DcsUnavailable``: transport failure, 5xx or 429 after the retry
  budget (``status``, ``retry_after``); ``DcsRejected``: a 4xx, or INVALID error codes
  (``codes``, ``tid``); ``DcsBadResponse``: a body that is not a JSON object.

Warnings, opt-out, blocks, 311 and transient codes come back in the response: callers decide.
The HTTP library is loaded on the first call (``get_client()`` itself is cheap).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

import aam_dcs
from aam_dcs.config import Settings, get_settings
from aam_dcs.dcs.policy import RETRYABLE_STATUSES, RetryPolicy
from aam_dcs.dcs.query import FORM_CONTENT_TYPE, DcsPath, DcsRequest, allowed_hosts
from aam_dcs.dcs.response import DcsResponse, ErrorCodes, IdServiceResponse, parse_event_response, parse_id_response
from aam_dcs.errors import DcsBadResponse, DcsError, DcsRejected, DcsUnavailable

if TYPE_CHECKING:
    from aam_dcs.dcs.transport import RawAnswer, Transport

DEFAULT_USER_AGENT: Final = f"aam-dcs-bundle/{getattr(aam_dcs, '__version__', '0.1.0')}"

logger = logging.getLogger(__name__)


class DcsGateway(Protocol):
    """What use cases need from the DCS; :class:`DcsClient` is the real one."""

    def send(self, request: DcsRequest) -> DcsResponse: ...

    def send_id(self, request: DcsRequest) -> IdServiceResponse: ...


class DcsClient:
    """Calls the DCS over one pooled, cookie-less HTTP session (built on the first call)."""

    def __init__(self, settings: Settings, *, retry_policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.retry_policy = retry_policy or RetryPolicy()
        self._transport: Transport | None = None
        self._lock = threading.Lock()
        self._allowed_hosts = {path: allowed_hosts(settings, path) for path in ("/event", "/id")}

    def send(self, request: DcsRequest) -> DcsResponse:
        """Send an ``/event`` call and parse its JSON answer."""
        _require_path(request, "/event")
        started = time.perf_counter()
        answer = self._exchange(request, started)
        response = parse_event_response(answer.body, x_error=answer.headers.get("X-Error"))
        return self._accepted(request, answer, response, started)

    def send_id(self, request: DcsRequest) -> IdServiceResponse:
        """Send an ID-service ``/id`` call and parse its JSON answer."""
        _require_path(request, "/id")
        started = time.perf_counter()
        answer = self._exchange(request, started)
        response = parse_id_response(answer.body, x_error=answer.headers.get("X-Error"))
        return self._accepted(request, answer, response, started)

    def url_for(self, request: DcsRequest) -> str:
        """``https://<target host><path>``, or ``<AAM_DCS_ENDPOINT><path>`` when an endpoint is set."""
        return f"{self._base_url(request)}{request.url_path}"

    def _base_url(self, request: DcsRequest) -> str:
        return self.settings.dcs_endpoint or f"https://{request.target_host}"

    def headers_for(self, request: DcsRequest) -> dict[str, str]:
        """Request headers. Never a ``Cookie``: each call stands for one visitor only."""
        headers = {
            "Host": self.settings.partner_host if request.path == "/event" else self.settings.id_service_host,
            "User-Agent": request.user_agent or DEFAULT_USER_AGENT,
            "Accept": "application/json",
        }
        if request.referer:
            headers["Referer"] = request.referer
        if request.method == "POST":
            headers["Content-Type"] = FORM_CONTENT_TYPE
        if self.settings.dcs_endpoint:
            headers["X-Forwarded-Host"] = request.target_host
        return headers

    def close(self) -> None:
        """Close the pooled connections; the next call opens new ones."""
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def _get_transport(self) -> Transport:
        transport = self._transport
        if transport is not None:
            return transport
        with self._lock:
            if self._transport is None:
                from aam_dcs.dcs.transport import Transport  # noqa: PLC0415 - loads urllib3 on first use

                self._transport = Transport(
                    timeout_seconds=self.settings.timeout_seconds,
                    max_attempts=self.settings.max_attempts,
                    policy=self.retry_policy,
                )
            return self._transport

    def _exchange(self, request: DcsRequest, started: float) -> RawAnswer:
        self._check_target(request)
        try:
            answer = self._get_transport().fetch(
                request.method,
                self._base_url(request),
                request.url_path,
                headers=self.headers_for(request),
                body=request.body,
                idempotent=request.idempotent,
            )
            _check_status(answer)
        except DcsError as error:
            _log_failure(request, error, started)
            raise
        return answer

    def _check_target(self, request: DcsRequest) -> None:
        if request.target_host not in self._allowed_hosts[request.path]:
            raise ValueError(f"{request.path} may only call the region table, the partner alias or the ID-service host")

    def _accepted[R: ErrorCodes](self, request: DcsRequest, answer: RawAnswer, response: R, started: float) -> R:
        tid = response.tid
        if response.invalid:
            error = DcsRejected("the DCS refused the request as invalid", codes=response.codes, tid=tid)
            _log_failure(request, error, started, status=answer.status, attempts=answer.attempts)
            raise error
        if logger.isEnabledFor(logging.DEBUG):
            fields = _log_fields(request, started, status=answer.status, attempts=answer.attempts, tid=tid)
            logger.debug("DCS call answered", extra=fields | {"codes": response.codes})
        return response


def _require_path(request: DcsRequest, path: DcsPath) -> None:
    if request.path != path:
        raise ValueError(f"this method sends {path} calls, not {request.path}")


def _check_status(answer: RawAnswer) -> None:
    """A 2xx goes on to body parsing; anything else is a typed error."""
    status = answer.status
    if 200 <= status < 300:
        return
    if status in RETRYABLE_STATUSES:
        raise DcsUnavailable(
            f"the DCS answered HTTP {status} (attempts: {answer.attempts})",
            status=status,
            retry_after=answer.retry_after,
            attempts=answer.attempts,
        )
    if 400 <= status < 500:
        raise DcsRejected(f"the DCS refused the request with HTTP {status}", status=status, attempts=answer.attempts)
    raise DcsBadResponse(f"the DCS answered with unexpected HTTP {status}", status=status, attempts=answer.attempts)


def _log_fields(request: DcsRequest, started: float, **fields: object) -> dict[str, object]:
    """Host, path, method, duration and the given fields; never IDs, blobs or consent strings."""
    return {
        "dcs_host": request.target_host,
        "dcs_path": request.path,
        "dcs_method": request.method,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        **fields,
    }


def _log_failure(request: DcsRequest, error: DcsError, started: float, **fields: object) -> None:
    details = {key: error.details.get(key) for key in ("status", "attempts", "retry_after", "may_have_processed")}
    logger.warning(
        "DCS call failed: %s",
        type(error).__name__,
        extra=_log_fields(request, started, tid=error.tid, codes=error.codes, **details) | fields,
    )


class _ClientHolder:
    client: DcsClient | None = None
    lock = threading.Lock()


def get_client() -> DcsClient:
    """The container's client, built on first use from the settings."""
    client = _ClientHolder.client
    if client is None:
        with _ClientHolder.lock:
            if _ClientHolder.client is None:
                _ClientHolder.client = DcsClient(get_settings())
            client = _ClientHolder.client
    return client


def reset_client() -> None:
    """Forget the container's client (tests, or after a settings change); closes its connections."""
    with _ClientHolder.lock:
        client, _ClientHolder.client = _ClientHolder.client, None
    if client is not None:
        client.close()

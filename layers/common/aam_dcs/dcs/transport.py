"""The HTTP transport: one urllib3 pool per container, the retry rules, and transport errors.

urllib3 keeps no cookies at all, which the DCS requires: a shared jar would merge every
visitor into one ``demdex`` device. This module is imported on the first call, not before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ProtocolError, ReadTimeoutError

from aam_dcs.dcs.policy import RetryPolicy
from aam_dcs.dcs.retry import DcsRetry, RetriesExhausted, build_retry
from aam_dcs.errors import DcsError, DcsTimeout, DcsUnavailable

POOLS_PER_CONTAINER: Final = 32  # hosts: 8 regions, the partner alias, the ID service, a local endpoint
CONNECTIONS_PER_HOST: Final = 16  # a queue batch calls concurrently across message groups
_URLLIB3_LOGGERS: Final = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """What came back over HTTP, after the retries."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    attempts: int
    retry_after: float | None


class Transport:
    """Sends one request with the DCS retry rules; raises only typed transport errors."""

    def __init__(self, *, timeout_seconds: float, max_attempts: int, policy: RetryPolicy) -> None:
        _keep_query_strings_out_of_logs()
        self._pool = urllib3.PoolManager(
            num_pools=POOLS_PER_CONTAINER,
            maxsize=CONNECTIONS_PER_HOST,
            block=False,
            cert_reqs="CERT_REQUIRED",
            timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds),
            retries=False,
        )
        self._pools_by_base: dict[str, HTTPConnectionPool] = {}
        self._timeout_seconds = timeout_seconds
        self._retries = {
            idempotent: build_retry(policy, max_attempts=max_attempts, idempotent=idempotent)
            for idempotent in (True, False)
        }

    def fetch(
        self,
        method: str,
        base_url: str,
        target: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        idempotent: bool,
    ) -> RawAnswer:
        """``method base_url+target``; ``target`` is the path and query."""
        retry = self._retries[idempotent]
        try:
            response = self._pool_for(base_url).urlopen(
                method, target, body=body, headers=headers, retries=retry, redirect=False, preload_content=True
            )
        except RetriesExhausted as exhausted:
            raise self._transport_error(exhausted.reason, exhausted.attempts, idempotent) from None
        except HTTPError as error:
            raise self._transport_error(error, 1, idempotent) from None
        return _raw_answer(response, retry)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pools_by_base.clear()
        self._pool.clear()

    def _pool_for(self, base_url: str) -> HTTPConnectionPool:
        """The host's connection pool, looked up once per base URL (skips URL parsing on every call).

        The hosts are bounded by the region table and the settings (at most 11), below
        ``POOLS_PER_CONTAINER``, so the manager never evicts (closes) a pool kept here.
        """
        pool = self._pools_by_base.get(base_url)
        if pool is None:
            pool = self._pools_by_base.setdefault(base_url, self._pool.connection_from_url(base_url))
        return pool

    def _transport_error(self, reason: Exception | None, attempts: int, idempotent: bool) -> DcsError:
        """The typed error for a call that got no HTTP answer. URLs never go into messages: they hold IDs."""
        if isinstance(reason, ReadTimeoutError):
            return DcsTimeout(
                f"the DCS did not answer within {self._timeout_seconds:g} s",
                attempts=attempts,
                may_have_processed=not idempotent,
            )
        if isinstance(reason, ProtocolError) and not idempotent:
            return DcsTimeout(
                "the connection to the DCS dropped after the request was sent; the DCS may have processed it",
                attempts=attempts,
                may_have_processed=True,
            )
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return DcsTimeout(
                f"could not connect to the DCS within {self._timeout_seconds:g} s",
                attempts=attempts,
                may_have_processed=False,
            )
        return DcsUnavailable(
            f"could not reach the DCS ({type(reason).__name__})",
            attempts=attempts,
            may_have_processed=not idempotent and not isinstance(reason, NewConnectionError),
        )


def _raw_answer(response: urllib3.BaseHTTPResponse, retry: DcsRetry) -> RawAnswer:
    final_retry = response.retries if isinstance(response.retries, DcsRetry) else retry
    return RawAnswer(
        status=response.status,
        headers=response.headers,
        body=response.data,
        attempts=final_retry.attempts_made,
        retry_after=final_retry.get_retry_after(response),
    )


class _RedactQueryStrings(logging.Filter):
    """urllib3 logs full URLs (at WARNING on retries); DCS query strings hold visitor IDs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def _redact(arg: object) -> object:
    if isinstance(arg, str) and "?" in arg:
        return arg.split("?", 1)[0] + "?<redacted>"
    return arg


def _keep_query_strings_out_of_logs() -> None:
    for name in _URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _RedactQueryStrings) for existing in logger.filters):
            logger.addFilter(_RedactQueryStrings())

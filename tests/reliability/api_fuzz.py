"""Schemathesis against the local API: every operation of ``local/openapi.yaml``, a bounded number of
generated requests each, sent over loopback to the real handlers behind the local gateway.

Three kinds of request per operation: *positive* (what the document allows), *negative* (what it
forbids) and *anchored* (positive, with a valid visitor ID put in, so the request gets past identity
checks to the DCS simulator). Figures: requests tried, statuses, 5xx (must be 0) and crashes (must be
0): a request the stack never answered (connection dropped, timeout), a handler that raised (the
gateway's ``Internal server error``), or a function reported unhealthy afterwards.

    python -m tests.reliability.api_fuzz --examples 300     # starts its own local stack

The short run is a test (``tests/local/test_api_fuzz.py``); ``make reliability`` runs the long one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode

DOCUMENT = Path(__file__).resolve().parents[2] / "local" / "openapi.yaml"
MODES = ("positive", "negative", "anchored")
REQUEST_TIMEOUT_SECONDS = 30
GATEWAY_CRASH_BODY = b'{"message": "Internal server error"}'
#: Errors of the HTTP client itself: the generated request could not be sent (a header with CR/LF...).
UNSENDABLE = (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError, ValueError)
visitor_ids = st.integers(1, 10**38 - 1).map(lambda number: f"{number:038d}")


@dataclass
class Finding:
    operation: str
    mode: str
    what: str  # "HTTP 500", "crash: ConnectionError"...
    request: str  # a curl command that repeats it

    def line(self) -> str:
        return f"{self.operation} [{self.mode}] {self.what}: {self.request[:300]}"


@dataclass
class FuzzFigures:
    tried: Counter[str] = field(default_factory=Counter)  # by operation
    statuses: Counter[int] = field(default_factory=Counter)
    unsendable: int = 0
    server_errors: list[Finding] = field(default_factory=list)
    crashes: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.tried.values())

    def table(self) -> str:
        rows = [f"{'operation':<24}{'requests':>10}", *(f"{op:<24}{n:>10}" for op, n in sorted(self.tried.items()))]
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        rows += [
            f"{'all':<24}{self.total:>10}",
            f"statuses: {statuses}",
            f"not sendable by the client (skipped): {self.unsendable}",
            f"5xx: {len(self.server_errors)}   crashes: {len(self.crashes)}   in {self.seconds:.1f} s",
            *(finding.line() for finding in [*self.server_errors, *self.crashes][:20]),
        ]
        return "\n".join(rows)


def operations() -> list[APIOperation]:
    schema = schemathesis.openapi.from_path(DOCUMENT)
    return [result.ok() for result in schema.get_all_operations()]


def cases(operation: APIOperation, mode: str) -> st.SearchStrategy[Case]:
    if mode == "negative":
        return operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    if mode == "positive":
        return positive
    return st.tuples(positive, visitor_ids).map(lambda pair: with_visitor(*pair))


def with_visitor(case: Case, mid: str) -> Case:
    """The case with a valid ECID (and, for /signals, something to send), so it gets past the
    identity checks and reaches the DCS simulator; every other generated field stays."""
    if case.method.upper() == "GET":
        case.query = {**(case.query or {}), "mid": mid}
        return case
    body = case.body if isinstance(case.body, dict) else {}
    if case.path == "/signals" and not (body.get("signals") or body.get("trait_ids") or body.get("customer_ids")):
        body["signals"] = {"c_fuzz": "1"}
    case.body = {**body, "mid": mid}
    return case


def fuzz_api(api_url: str, *, examples: int, figures: FuzzFigures | None = None) -> FuzzFigures:
    """Up to ``examples`` requests per operation and mode against ``api_url``; the figures."""
    figures = figures or FuzzFigures()
    started = time.monotonic()
    with requests.Session() as session:
        for operation in operations():
            for mode in MODES:
                run_operation(session, api_url, operation, mode=mode, examples=examples, figures=figures)
    check_health(api_url, figures)
    figures.seconds = time.monotonic() - started
    return figures


def run_operation(
    session: requests.Session, api_url: str, operation: APIOperation, *, mode: str, examples: int, figures: FuzzFigures
) -> None:
    name = f"{operation.method.upper()} {operation.path}"

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases(operation, mode))
    def send(case: Case) -> None:
        session.cookies.clear()  # each request is its own visitor; no Set-Cookie carries over
        try:
            response = case.call(base_url=api_url, session=session, timeout=REQUEST_TIMEOUT_SECONDS)
        except UNSENDABLE:
            figures.unsendable += 1
            return
        except requests.RequestException as error:
            figures.tried[name] += 1
            figures.crashes.append(Finding(name, mode, f"crash: {type(error).__name__}", curl(case, api_url)))
            return
        figures.tried[name] += 1
        record(
            figures, response.status_code, response.content, lambda what: Finding(name, mode, what, curl(case, api_url))
        )

    send()


def record(figures: FuzzFigures, status: int, body: bytes, finding: Callable[[str], Finding]) -> None:
    """Count one answer; a 5xx (and a handler that raised) becomes a finding about the request."""
    figures.statuses[status] += 1
    if status >= 500:
        figures.server_errors.append(finding(f"HTTP {status} {body[:200]!r}"))
    if status == 502 and body == GATEWAY_CRASH_BODY:
        figures.crashes.append(finding("crash: the handler raised"))


def curl(case: Case, api_url: str) -> str:
    """A curl command that repeats the request (the body of an unprintable one as its repr)."""
    try:
        return case.as_curl_command(base_url=api_url)
    except Exception:  # a finding must never be lost to its description
        return f"{case.method} {api_url}{case.formatted_path} query={case.query!r} body={case.body!r:.200}"


def check_health(api_url: str, figures: FuzzFigures) -> None:
    """The stack still answers, and no function was left unhealthy."""
    try:
        health = requests.get(f"{api_url}/_local/health", timeout=REQUEST_TIMEOUT_SECONDS).json()
    except (requests.RequestException, ValueError) as error:
        figures.crashes.append(Finding("stack", "-", f"crash: health check failed ({type(error).__name__})", ""))
        return
    for function, state in (health.get("functions") or {}).items():
        if state.get("status") != "ready":
            figures.crashes.append(Finding(function, "-", f"crash: {state.get('error')}", ""))


@contextlib.contextmanager
def quiet_stack() -> Iterator[Any]:
    """A local stack whose functions' metric lines and warnings do not drown the table."""
    from local.run import LocalStack

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        with LocalStack(api_port=0, dcs_port=0, pollers=False) as stack:
            yield stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="requests per operation and mode")
    parser.add_argument("--api-url", help="fuzz a running stack (loopback only) instead of starting one")
    args = parser.parse_args(argv)
    if args.api_url:
        figures = fuzz_api(args.api_url, examples=args.examples)
    else:
        with quiet_stack() as stack:
            figures = fuzz_api(stack.api_url, examples=args.examples)
    print(figures.table())
    return 1 if figures.server_errors or figures.crashes else 0


if __name__ == "__main__":
    sys.exit(main())

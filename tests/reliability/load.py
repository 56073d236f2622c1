"""A bounded load test of the local API: open-loop requests at fixed times, mixed across the routes.

The local stack runs in its own process (``python -m local.run`` on free loopback ports), so the
load generator does not share its interpreter. Request ``i`` is due at ``start + i / rate``
whatever happened to the earlier ones (open loop: a slow server does not slow the arrivals down),
and its latency is counted from that due time, so time spent queued behind a slow server counts.
Every request is one new visitor (its own ECID), as real traffic is, so the per-visitor call cap
never answers 429. The run stops by itself: after ``seconds``, plus at most ``drain_seconds``.

    python -m tests.reliability.load --rate 200 --seconds 60

Figures: requests sent, errors (transport errors or any status other than 200/202; must be 0),
p50/p90/p99/max latency (overall and per route), the achieved arrival rate and how late the
generator itself was (if it falls behind, the figures describe a lower rate than asked).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parents[2]
ORG_COOKIE = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 90
REQUEST_TIMEOUT_SECONDS = 30
OK_STATUSES = frozenset({200, 202})


@dataclass(frozen=True)
class Route:
    """One kind of request of the mix; ``build`` makes (method, path, body, headers) for a visitor."""

    name: str
    weight: int
    build: Callable[[str], tuple[str, str, bytes | None, dict[str, str]]]


def _json(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


def _amcv_cookie(mid: str) -> str:
    return f"{ORG_COOKIE}=MCMID%7C{mid}%7CMCAAMLH-1728004800%7C9%7CMCOPTOUT-1727407200s%7CNONE"


def _get(path: str, headers: dict[str, str]) -> tuple[str, str, bytes | None, dict[str, str]]:
    return "GET", path, None, headers


def _post(path: str, body: dict[str, Any]) -> tuple[str, str, bytes | None, dict[str, str]]:
    data, headers = _json(body)
    return "POST", path, data, headers


MIX = (
    Route("GET /ids", 2, lambda mid: _get("/ids", {"Cookie": _amcv_cookie(mid)})),
    Route("POST /ids", 1, lambda mid: _post("/ids", {"mid": mid, "region_id": 9})),
    Route("POST /signals sync", 2, lambda mid: _post("/signals", {"mid": mid, "signals": {"c_load": "1"}})),
    Route(
        "POST /signals async",
        2,
        lambda mid: _post("/signals", {"mid": mid, "signals": {"c_load": "1"}, "mode": "async"}),
    ),
    Route("GET /segments", 2, lambda mid: _get("/segments", {"Cookie": _amcv_cookie(mid)})),
    Route("POST /segments", 1, lambda mid: _post("/segments", {"mid": mid, "region_id": 9})),
)


def schedule(rate: float, seconds: float, seed: int = 7) -> list[tuple[float, Route, str]]:
    """(due offset in seconds, route, visitor ECID) for every request, in time order."""
    rng = random.Random(seed)
    routes = [route for route in MIX for _ in range(route.weight)]
    count = round(rate * seconds)
    return [(i / rate, rng.choice(routes), f"{rng.randrange(10**37, 10**38):038d}") for i in range(count)]


@dataclass
class Sample:
    route: str
    due: float  # when the request was due (monotonic)
    sent: float  # when it left
    done: float
    status: int | None  # None: transport error
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.done - self.due


@dataclass
class LoadFigures:
    rate: float
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    unfinished: int = 0  # still in flight when the drain time ran out

    @property
    def errors(self) -> list[Sample]:
        return [s for s in self.samples if s.status not in OK_STATUSES]

    @property
    def error_count(self) -> int:
        return len(self.errors) + self.unfinished

    @property
    def achieved_rate(self) -> float:
        """Requests sent per second, between the first and the last departure."""
        sent = sorted(s.sent for s in self.samples)
        return (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else 0.0

    @property
    def max_send_lag(self) -> float:
        return max((s.sent - s.due for s in self.samples), default=0.0)

    def table(self) -> str:
        lines = [
            f"load: {self.rate:g} requests/s asked for {self.seconds:g} s; achieved {self.achieved_rate:.1f}/s; "
            f"generator lag at most {self.max_send_lag * 1000:.0f} ms",
            f"{'route':<22}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        ]
        by_route: dict[str, list[Sample]] = {}
        for sample in self.samples:
            by_route.setdefault(sample.route, []).append(sample)
        for name, samples in [*sorted(by_route.items()), ("all", self.samples)]:
            lines.append(_row(name, samples))
        kinds = Counter(s.error or f"HTTP {s.status}" for s in self.errors)
        lines.append(f"errors: {self.error_count} (unfinished: {self.unfinished}) {dict(kinds) if kinds else ''}")
        return "\n".join(lines)


def _row(name: str, samples: list[Sample]) -> str:
    latencies = sorted(s.latency * 1000 for s in samples)
    errors = sum(1 for s in samples if s.status not in OK_STATUSES)
    p50, p90, p99 = (percentile(latencies, q) for q in (50, 90, 99))
    top = latencies[-1] if latencies else 0.0
    return f"{name:<22}{len(samples):>9}{errors:>8}{p50:>9.1f}{p90:>9.1f}{p99:>9.1f}{top:>9.1f}"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(q) - 1]


def run_load(api_url: str, *, rate: float, seconds: float, workers: int = 64, drain_seconds: float = 30) -> LoadFigures:
    """Send the schedule to ``api_url`` (loopback only) and measure every request."""
    _require_loopback(api_url)
    figures = LoadFigures(rate=rate, seconds=seconds)
    lock = threading.Lock()
    closed = threading.Event()  # after the drain, late answers are not counted (they are unfinished)
    http = urllib3.PoolManager(maxsize=workers, block=False, retries=False)
    timeout = urllib3.Timeout(total=REQUEST_TIMEOUT_SECONDS)

    def send(due: float, route: Route, mid: str) -> None:
        method, path, body, headers = route.build(mid)
        sent = time.monotonic()
        try:
            response = http.request(method, api_url + path, body=body, headers=headers, timeout=timeout)
            sample = Sample(route.name, due, sent, time.monotonic(), response.status)
        except urllib3.exceptions.HTTPError as error:
            sample = Sample(route.name, due, sent, time.monotonic(), None, type(error).__name__)
        with lock:
            if not closed.is_set():
                figures.samples.append(sample)

    plan = schedule(rate, seconds)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load")
    start = time.monotonic() + 0.2
    for offset, route, mid in plan:
        due = start + offset
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pool.submit(send, due, route, mid)
    pool.shutdown(wait=False)
    _drain(lambda: len(figures.samples) >= len(plan), drain_seconds)
    with lock:
        closed.set()
        figures.unfinished = len(plan) - len(figures.samples)
    http.clear()
    return figures


def _drain(finished: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not finished() and time.monotonic() < deadline:
        time.sleep(0.05)


def _require_loopback(api_url: str) -> None:
    host = urllib3.util.parse_url(api_url).host or ""
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]") and not host.startswith("127."):
        raise ValueError(f"the load test only targets loopback addresses, not {host!r}")


# --------------------------------------------------------------------------------- the stack


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextmanager
def stack_process(*, pollers: bool = True, log_path: Path | None = None) -> Iterator[str]:
    """``python -m local.run`` on free loopback ports in a child process; yields the API URL."""
    api_port, dcs_port = free_port(), free_port()
    command = [sys.executable, "-m", "local.run", "--api-port", str(api_port), "--dcs-port", str(dcs_port), "--quiet"]
    if not pollers:
        command.append("--no-pollers")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}
    with (log_path or Path(os.devnull)).open("w") as log:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://{LOOPBACK}:{api_port}"
        try:
            _wait_until_healthy(url, child)
            yield url
        finally:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_until_healthy(url: str, child: subprocess.Popen[bytes]) -> None:
    http = urllib3.PoolManager(retries=False)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the local stack exited with {child.returncode} before it was ready")
        try:
            if http.request("GET", f"{url}/_local/health", timeout=5).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the local stack did not answer within {STARTUP_TIMEOUT_SECONDS} s")


def warm_up(api_url: str, requests_per_route: int = 5) -> None:
    """A few requests per route first, so the figures measure warm containers, not imports."""
    run_load(api_url, rate=50, seconds=requests_per_route * len(MIX) / 50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="duration (default 60)")
    parser.add_argument("--workers", type=int, default=64, help="client threads (default 64)")
    parser.add_argument("--api-url", help="load a running stack (loopback only) instead of starting one")
    parser.add_argument("--stack-log", type=Path, help="write the stack's output to this file")
    args = parser.parse_args(argv)
    if args.api_url:
        figures = run_load(args.api_url, rate=args.rate, seconds=args.seconds, workers=args.workers)
    else:
        with stack_process(log_path=args.stack_log) as url:
            warm_up(url)
            figures = run_load(url, rate=args.rate, seconds=args.seconds, workers=args.workers)
    print(figures.table())
    return 1 if figures.error_count else 0


if __name__ == "__main__":
    sys.exit(main())

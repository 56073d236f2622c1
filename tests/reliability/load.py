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
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import ModuleType
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
            sample = Sample(route.name, due, sent, time.monotonic(), response.status, _error_text(response))
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


def _error_text(response: Any) -> str | None:
    """What an error answer says (its JSON's error type and message, cut short); None for 200/202."""
    if response.status in OK_STATUSES:
        return None
    text = response.data.decode("utf-8", "replace")
    try:
        answer = json.loads(text)
        if isinstance(answer, dict):
            text = " ".join(str(answer.get(key, "")) for key in ("error", "message") if key in answer) or text
    except ValueError:
        pass
    return f"HTTP {response.status} {text[:100]}"


def _drain(finished: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not finished() and time.monotonic() < deadline:
        time.sleep(0.05)


def _require_loopback(api_url: str) -> None:
    host = urllib3.util.parse_url(api_url).host or ""
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]") and not host.startswith("127."):
        raise ValueError(f"the load test only targets loopback addresses, not {host!r}")


# --------------------------------------------------------------------------------- the stack

#: Where the AWS side of the functions lives during a run.
#: ``memory``: the layer's own in-memory fakes (profile store, idempotency, dead letters) and an
#: in-memory FIFO queue with its event source (``local.poller.InMemorySqsSource``), handed to the
#: functions through their own factories; moto still holds the provisioned resources, idle.
#: ``moto``: every DynamoDB and SQS call goes to moto (its own process), the SQS pollers feed the
#: queue worker, as ``make run`` does.
AWS_MODES = ("memory", "moto")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}


@dataclass
class StackProcesses:
    """The processes of one run, by role (``stack``, ``dcs``, ``moto``); ``api_url`` once up."""

    api_url: str
    pids: dict[str, int]


@contextmanager
def stack_processes(aws: str = "memory", *, log_path: Path | None = None) -> Iterator[StackProcesses]:
    """The DCS simulator, moto and the stack (gateway, functions, queue workers), each in its own process.

    All three start at once (their imports overlap; the stack waits for the other two before it
    provisions), everything binds to loopback on free ports, and every process is stopped on the
    way out.
    """
    if aws not in AWS_MODES:
        raise ValueError(f"aws must be one of {AWS_MODES}, not {aws!r}")
    from tests.support.moto_process import MotoProcess

    moto = MotoProcess(LOOPBACK, sqs_under_load=True)
    dcs_url, api_port = f"http://{LOOPBACK}:{free_port()}", free_port()
    dcs_command = [sys.executable, "-c", _SIMULATOR_LAUNCHER, "--host", LOOPBACK, "--port", dcs_url.rsplit(":", 1)[1]]
    command = [sys.executable, "-m", "tests.reliability.load", "--serve", "--aws", aws]
    command += ["--api-port", str(api_port), "--dcs-url", dcs_url, "--aws-endpoint", moto.endpoint]
    children: list[subprocess.Popen[bytes]] = []
    with ExitStack() as cleanup, (log_path or Path(os.devnull)).open("w") as log:
        cleanup.callback(moto.stop)
        cleanup.callback(_stop_all, children)
        moto.launch()
        dcs = subprocess.Popen(dcs_command, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=log)
        children.append(dcs)
        stack = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
        children.insert(0, stack)  # stopped first
        url = f"http://{LOOPBACK}:{api_port}"
        _wait_until_healthy(url, stack)
        yield StackProcesses(url, {"stack": stack.pid, "dcs": dcs.pid, "moto": moto.pid or 0})


#: ``python -m local.dcs_simulator`` with a listen backlog of 128 instead of socketserver's 5: the
#: functions' containers open their connections to the DCS in bursts, and a SYN dropped from a full
#: backlog costs a one-second retransmission (a DCS timeout, so a 502, on a busy machine).
_SIMULATOR_LAUNCHER = """
import sys
from local.dcs_simulator import __main__ as simulator, server
server._Server.request_queue_size = 128
sys.exit(simulator.main(sys.argv[1:]))
"""


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_for_port(url: str, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    """Until something listens at the URL's host and port (another process still starting)."""
    parsed = urllib3.util.parse_url(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((parsed.host or LOOPBACK, int(parsed.port or 80)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens at {url} after {timeout:g} s") from None
            time.sleep(0.05)


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


def health(api_url: str) -> dict[str, Any]:
    response = urllib3.request("GET", f"{api_url}/_local/health", timeout=10, retries=False)
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def signal_queue(api_url: str) -> dict[str, int]:
    """The signal queue's figures from the stack: sent, delivered, dead-lettered, pending."""
    return dict(health(api_url).get("signal_queue") or {})


def wait_for_signal_queue(api_url: str, timeout: float) -> dict[str, int]:
    """Wait until every queued signal message was delivered or dead-lettered; the last figures."""
    deadline = time.monotonic() + timeout
    figures = signal_queue(api_url)
    while figures.get("pending") and time.monotonic() < deadline:
        time.sleep(0.1)
        figures = signal_queue(api_url)
    return figures


# --------------------------------------------------------------------------------- CPU per process

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux ``/proc``; 0 where it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class CpuMeter:
    """CPU spent by each process between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {role: pid for role, pid in pids.items() if pid}
        self._start: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def start(self) -> None:
        self._start = {role: cpu_seconds(pid) for role, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        self.seconds = {role: cpu_seconds(pid) - self._start[role] for role, pid in self.pids.items()}
        return self.seconds


# --------------------------------------------------------------------------------- the report


@dataclass
class RunReport:
    aws: str
    figures: LoadFigures
    cpu_seconds: dict[str, float]
    queue: dict[str, int]

    @property
    def failed(self) -> bool:
        return bool(self.figures.error_count or self.queue.get("pending") or self.queue.get("dead_lettered"))

    def cpu_per_request_ms(self) -> dict[str, float]:
        count = max(1, len(self.figures.samples))
        return {role: seconds * 1000 / count for role, seconds in self.cpu_seconds.items()}


ROLES = ("stack", "dcs", "moto", "load")


def markdown(reports: list[RunReport]) -> str:
    """One row per run: the figures the README quotes."""
    header = (
        "| AWS side | rate asked | achieved | requests | errors | p50 ms | p99 ms | async delivered | "
        "CPU ms/request: stack / DCS sim / moto / load generator |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for report in reports:
        figures = report.figures
        latencies = sorted(sample.latency * 1000 for sample in figures.samples)
        cpu = report.cpu_per_request_ms()
        cpu_text = " / ".join(f"{cpu[role]:.1f}" if role in cpu else "-" for role in ROLES)
        queue = report.queue
        delivered = f"{queue.get('delivered', 0)}/{queue.get('sent', 0)}"
        if queue.get("dead_lettered"):
            delivered += f" ({queue['dead_lettered']} dead-lettered)"
        lines.append(
            f"| {report.aws} | {figures.rate:g}/s | {figures.achieved_rate:.1f}/s | {len(figures.samples)} "
            f"| {figures.error_count} | {percentile(latencies, 50):.1f} | {percentile(latencies, 99):.1f} "
            f"| {delivered} | {cpu_text} |"
        )
    return "\n".join(lines)


def measure(
    aws: str,
    *,
    rate: float,
    seconds: float,
    workers: int = 64,
    log_path: Path | None = None,
    drain_seconds: float = 30,
) -> RunReport:
    """One run: start the processes, warm up, load, wait for the queue worker, stop everything."""
    with stack_processes(aws, log_path=log_path) as stack:
        warm_up(stack.api_url)
        before = wait_for_signal_queue(stack.api_url, drain_seconds)
        meter = CpuMeter({**stack.pids, "load": os.getpid()})
        meter.start()
        figures = run_load(stack.api_url, rate=rate, seconds=seconds, workers=workers, drain_seconds=drain_seconds)
        after = wait_for_signal_queue(stack.api_url, drain_seconds)
        cpu = meter.stop()
    # The warm-up's messages are not this run's.
    queue = {name: after.get(name, 0) - before.get(name, 0) for name in ("sent", "delivered", "dead_lettered")}
    queue["pending"] = after.get("pending", 0)
    return RunReport(aws, figures, cpu, queue)


def warm_up(api_url: str, requests_per_route: int = 5) -> None:
    """A few requests per route first, so the figures measure warm containers, not imports."""
    run_load(api_url, rate=50, seconds=requests_per_route * len(MIX) / 50)


# --------------------------------------------------------------------------------- the stack process


def serve(aws: str, *, api_port: int, dcs_url: str, aws_endpoint: str) -> int:
    """The stack process of a run: ``LocalStack`` on the given simulator and moto, until SIGTERM."""
    from local.run import LocalStack, quiet_powertools_warnings

    for url in (dcs_url, aws_endpoint):
        _require_loopback(url)
        wait_for_port(url)
    quiet_powertools_warnings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fakes = MemoryAws() if aws == "memory" else None
    stack = LocalStack(
        api_port=api_port,
        simulator_url=dcs_url,
        aws_endpoint=aws_endpoint,
        pollers=fakes is None,  # in memory, the fake queue's own event source feeds the worker
        on_container=fakes.on_container if fakes is not None else None,
    )
    stack.start()
    try:
        if fakes is not None:
            fakes.start_queue(stack)
        figures = fakes.queue_figures if fakes is not None else (lambda: moto_queue_figures(stack))
        assert stack.gateway is not None
        stack.gateway.local.health = lambda: {**stack.health(), "signal_queue": figures()}
        while not stop.wait(0.5):
            pass
    finally:
        if fakes is not None:
            fakes.stop_queue()
        stack.stop()
    return 0


def signal_source(stack: Any) -> Any:
    """The template's SQS event source of ``send_signals`` (the signal queue)."""
    function = stack.function("send_signals")
    return next(s for s in stack.template.sqs_sources(stack.evaluator) if s.function_id == function.logical_id)


def moto_queue_figures(stack: Any) -> dict[str, int]:
    """The signal queue's figures in moto: what the pollers delivered, what is left, what was redriven."""
    source = signal_source(stack)
    queue = stack.resources.queues[source.queue_id]
    sqs = stack.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def count(url: str) -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[name]) for name in names)

    poller = next((p for p in stack.pollers if p.config.queue_url == queue.url), None)
    deleted = poller.stats.as_dict()["deleted"] if poller is not None else 0
    dlq = stack.resources.queues[queue.dead_letter_queue_id].url if queue.dead_letter_queue_id else None
    dead = count(dlq) if dlq else 0  # redriven by SQS, or sent there (and deleted) by the worker
    delivered = max(0, deleted - dead)
    pending = count(queue.url)
    return {"sent": delivered + dead + pending, "delivered": delivered, "dead_lettered": dead, "pending": pending}


class MemoryAws:
    """The AWS side in memory, handed to each new container through the function's own factories.

    One profile store (the table), one idempotency store and one dead-letter list for all
    containers, as the deployed functions share one table and one queue. The functions' code is
    unchanged: their ``@cache``d ``resolver()``, ``sender()``, ``worker()`` and ``lookup()`` are
    replaced in each container by ones that build the same objects with these adapters.
    """

    def __init__(self) -> None:
        self.store: Any = None
        self.idempotency: Any = None
        self.dead_letters: Any = None
        self.queue: Any = None  # local.poller.InMemorySqsSource, once the stack is up
        self._lock = threading.Lock()

    def _adapters(self) -> None:
        # The layer's modules as the containers import them (the stack imports the layer afresh).
        from aam_dcs.jobs.deadletter import InMemoryDeadLetters
        from aam_dcs.jobs.idempotency import InMemoryIdempotency
        from aam_dcs.store.memory import InMemoryProfileStore

        with self._lock:
            if self.store is None:
                self.store = InMemoryProfileStore()
                self.idempotency = InMemoryIdempotency()
                self.dead_letters = InMemoryDeadLetters()

    def on_container(self, function: Any, module: ModuleType) -> None:
        from aam_dcs.ids.resolver import default_resolver

        self._adapters()
        store = self.store

        def resolver() -> Any:
            return replace(default_resolver(), store=store)

        if function.name == "resolve_ids":
            module.resolver = cache(resolver)
        elif function.name == "send_signals":
            from aam_dcs.jobs.planner import CONTINUE_KIND
            from aam_dcs.signals.send import default_sender
            from aam_dcs.signals.worker import default_worker

            @cache
            def sender() -> Any:
                return replace(default_sender(), resolver=resolver(), store=store, queue=self.queue)

            @cache
            def worker() -> Any:
                made = default_worker(sender(), other_kinds={CONTINUE_KIND: module.continue_job})
                return replace(made, idempotency=self.idempotency, dead_letters=self.dead_letters)

            module.sender, module.worker = sender, worker
        elif function.name == "lookup_segments":
            from aam_dcs.segments.lookup import default_lookup

            module.lookup = cache(lambda: replace(default_lookup(), resolver=resolver(), store=store))

    def start_queue(self, stack: Any) -> None:
        from local.poller import InMemorySqsSource

        source = signal_source(stack)
        queue = stack.resources.queues[source.queue_id]
        function = stack.function(source.function_id)
        self.queue = InMemorySqsSource(
            stack.source_config(source, label=" (in memory)"),
            function.invoke,
            context_factory=function.context,
            max_receive_count=queue.max_receive_count or 5,
        )
        self.queue.start()

    def stop_queue(self) -> None:
        if self.queue is not None:
            self.queue.stop()

    def queue_figures(self) -> dict[str, int]:
        if self.queue is None:
            return {}
        figures = self.queue.as_dict()
        redriven, dead_lettered = figures["dead_lettered"], len(self.dead_letters.messages)  # by the queue, the worker
        return {
            "sent": figures["sent"],
            "delivered": figures["deleted"] - dead_lettered,
            "dead_lettered": redriven + dead_lettered,
            "pending": figures["depth"],
        }


# --------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="duration (default 60)")
    parser.add_argument("--aws", choices=AWS_MODES, default="memory", help="the AWS side (default memory)")
    parser.add_argument("--workers", type=int, default=64, help="client threads (default 64)")
    parser.add_argument("--api-url", help="load a running stack (loopback only) instead of starting one")
    parser.add_argument("--stack-log", type=Path, help="write the stack's output to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the stack process of a run
    parser.add_argument("--api-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dcs-url", help=argparse.SUPPRESS)
    parser.add_argument("--aws-endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.aws, api_port=args.api_port, dcs_url=args.dcs_url, aws_endpoint=args.aws_endpoint)
    if args.api_url:
        figures = run_load(args.api_url, rate=args.rate, seconds=args.seconds, workers=args.workers)
        print(figures.table())
        return 1 if figures.error_count else 0
    report = measure(args.aws, rate=args.rate, seconds=args.seconds, workers=args.workers, log_path=args.stack_log)
    print(report.figures.table())
    print(f"signal queue: {report.queue}")
    print()
    print(markdown([report]))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())

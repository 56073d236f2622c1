"""The fault suite: queued signals through the real queue and worker while the DCS misbehaves.

One run per fault, each on fresh template queues (moto servers), a fresh DCS simulator and the
deployed worker (``tests/support/signal_delivery.py``): the signals of ``Scale.visitors`` visitors
(the last one opted out at the DCS) are accepted with ``mode: async`` while the local poller works
the queue and the simulator injects the fault; the simulator's call log and the DLQ then say what
became of each signal: received once, duplicated, dead-lettered with a reason, or lost.

What must hold under every fault (``Result.problems``): the queue settles; no signal is lost; none
reaches the DLQ without a reason (SQS giving up after maxReceiveCount); every opted-out signal is
dead-lettered as ``opted_out``; a signal reaches the DCS twice only after an answer the worker never
read (a garbled or withheld answer, or a worker that died before recording it), and only under the
faults that cause such answers; the fault really happened; no visitor ever had two calls in flight.

Time is scaled down. The local poller makes a failed message visible again after a fixed delay,
where production backs off 30 s, 60 s, 120 s...: for D seconds of outage in all the delay is D/4 (at
least 1 s), so the queue's 8 receives span about twice the outage, as the production backoff spans a
one-minute outage by the third of its 5 receives; the circuit breaker's open interval is scaled with
it. The messages queued behind a failing message of the same visitor are received with it, skipped
and counted as received too: the receive budget covers the whole outage, not one message's share.

``python -m tests.reliability.faults`` runs the long version (100 visitors x 10 signals, the DCS down
for 60 s) and prints a markdown table; ``--short`` runs the short one, which ``test_faults.py`` runs
in ``make test``. See ``--help`` for the sizes and the faults to run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from aam_dcs.signals.send import SignalSender
from local.dcs_simulator import DcsSimulator, SimulatorConfig
from tests.integration.signals.conftest import Aws, bundle_env, create_resources, load_function
from tests.support.signal_delivery import (
    OPTED_OUT_UUID,
    Crashes,
    Tally,
    Workload,
    accept_all,
    crash_after_delivery,
    crash_mid_call,
    dead_letters,
    environment,
    moto_servers,
    processed_calls,
    quiet_logs,
    settle,
    signal_poller,
    wire,
)

#: seconds (None: until the run ends), and the simulator's faults for them
Phase = tuple[float | None, dict[str, Any]]
CrashStep = Callable[[SignalSender, Collection[int]], Crashes]
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Scale:
    visitors: int  # ECID visitors plus the opted-out one
    signals_per_visitor: int
    down_seconds: float  # the outage of ``dcs_down``
    burst_seconds: float  # each of the two 5xx bursts; the 429 storm lasts two
    settle_seconds: float  # how long a run may take to settle
    timeout_ms: int = 1000  # AAM_TIMEOUT_MS

    @property
    def workload(self) -> Workload:
        return Workload(visitors=self.visitors, signals_per_visitor=self.signals_per_visitor)


SHORT = Scale(visitors=10, signals_per_visitor=3, down_seconds=2, burst_seconds=1, settle_seconds=45)
LONG = Scale(visitors=100, signals_per_visitor=10, down_seconds=60, burst_seconds=10, settle_seconds=900)


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    phases: tuple[Phase, ...] = ()
    retry_delay_seconds: int = 1  # the breaker stays open as long (production: 30 s each)
    crash: CrashStep | None = None
    at_least_once: bool = False  # the fault garbles or withholds answers: duplicates are expected
    injected: str | None = None  # the simulator's name for the fault, which must have happened
    remaining_ms: int = 30_000  # each invocation's remaining time: bounds an in-progress record


def spread(outage: float) -> int:
    """The poller's retry delay for ``outage`` seconds of faults in all: the queue's 8 receives span
    about twice them (the messages queued behind a failing one are received, and counted, with it)."""
    return max(1, math.ceil(outage / 4))


def faults(scale: Scale) -> dict[str, Fault]:
    """Every fault of the suite, sized for ``scale``."""
    burst, down, hang = scale.burst_seconds, scale.down_seconds, scale.timeout_ms / 1000 + 1.5
    storm = {"seed": 12, "rate_limit_per_second": 3, "retry_after_seconds": RETRY_AFTER_SECONDS}
    storm_seconds = 2 * burst
    every = (
        Fault(
            "5xx_bursts",
            f"two {burst:g} s bursts of 502 and 503 on every call, {burst:g} s apart",
            phases=_bursts(burst, (502, 503)),
            retry_delay_seconds=spread(2 * burst),
            injected="error",
        ),
        Fault(
            "429_storm",
            f"3 calls/s in all for {storm_seconds:g} s, the rest 429 with Retry-After: {RETRY_AFTER_SECONDS}",
            phases=((storm_seconds, storm),),
            retry_delay_seconds=max(RETRY_AFTER_SECONDS, spread(storm_seconds)),
            injected="rate_limited",
        ),
        Fault(
            "hangs",
            f"15 % of calls processed, the answer held {hang:g} s, past the {scale.timeout_ms} ms timeout",
            phases=((None, {"seed": 13, "hang_rate": 0.15, "hang_seconds": hang}),),
            at_least_once=True,
            injected="hang",
        ),
        Fault(
            "connection_resets",
            "25 % of calls reset (TCP RST) before processing",
            phases=((None, {"seed": 14, "reset_rate": 0.25}),),
            injected="reset",
        ),
        Fault(
            "malformed_json",
            "20 % of calls processed and answered 200 with a truncated JSON body",
            phases=((None, {"seed": 15, "malformed_rate": 0.2}),),
            at_least_once=True,
            injected="malformed",
        ),
        Fault(
            "dcs_down",
            f"every call answered 503 for {down:g} s",
            phases=((down, {"seed": 16, "down": True}),),
            retry_delay_seconds=spread(down),
            injected="down",
        ),
        Fault(
            "crash_after_delivery",
            "the worker dies 3 times after a delivery was recorded, before the batch is acknowledged",
            crash=crash_after_delivery,
        ),
        Fault(
            "crash_mid_call",
            "the worker dies 3 times after the DCS answered, before the delivery was recorded "
            "(the record stays in progress for the invocation's remaining 1 s)",
            crash=crash_mid_call,
            at_least_once=True,
            remaining_ms=1000,
        ),
    )
    return {fault.name: fault for fault in every}


def _bursts(seconds: float, statuses: tuple[int, ...]) -> tuple[Phase, ...]:
    phases: list[Phase] = []
    for index, status in enumerate(statuses):
        if index:
            phases.append((seconds, {}))
        phases.append((seconds, {"seed": 11 + index, "error_rate": 1.0, "error_status": status}))
    return tuple(phases)


FAULT_NAMES = tuple(faults(SHORT))


class FaultSchedule:
    """Applies a fault's phases to the simulator: each phase's faults for its seconds, then none."""

    def __init__(self, sim: DcsSimulator, phases: tuple[Phase, ...]) -> None:
        self.sim = sim
        self.phases = phases
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-schedule", daemon=True)

    def __enter__(self) -> FaultSchedule:
        if self.phases:
            self.sim.set_faults(**self.phases[0][1])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sim.set_faults()

    def _run(self) -> None:
        for index, (seconds, faults_) in enumerate(self.phases):
            if index:
                self.sim.set_faults(**faults_)
            if self._stop.wait(seconds):
                return
        self.sim.set_faults()


@dataclass
class Result:
    fault: Fault
    tally: Tally
    settled: bool
    seconds: float
    stats: dict[str, Any]
    crashed: list[int] = field(default_factory=list)
    opted_out: dict[int, str | None] = field(default_factory=dict)  # seq -> its DLQ reason
    retry_after_gap: float | None = None  # the shortest wait of a visitor after a 429

    @property
    def injected(self) -> dict[str, int]:
        counts: dict[str, int] = dict(self.stats.get("faults_applied") or {})
        if self.crashed:
            counts["crash"] = len(self.crashed)
        return counts

    def problems(self) -> list[str]:
        """Whatever broke the suite's promises (see the module's docstring); empty when all held."""
        tally, fault, gap = self.tally, self.fault, self.retry_after_gap
        violations = self.stats["concurrent_violations"]
        checks = [
            (self.settled, "the queue did not settle"),
            (not tally.lost, f"lost: {tally.lost}"),
            (tally.redriven == 0, f"{tally.redriven} moved to the DLQ by SQS, without a reason"),
            (all(r == "opted_out" for r in self.opted_out.values()), f"opted-out signals: {self.opted_out}"),
            (not tally.unexplained, f"received again after a readable answer: {tally.unexplained}"),
            (fault.at_least_once or tally.duplicated == 0, f"{tally.duplicated} duplicated, no fault explains it"),
            (self._happened(), f"the fault never happened: {self.injected}"),
            (not violations, f"a visitor had calls in flight together: {violations[:3]}"),
            (gap is None or gap >= RETRY_AFTER_SECONDS - 0.05, f"Retry-After not honoured: waited {gap} s"),
        ]
        return [problem for held, problem in checks if not held]

    def _happened(self) -> bool:
        if self.fault.crash is not None:
            return bool(self.crashed)
        return self.injected.get(self.fault.injected or "", 0) > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "fault": self.fault.name,
            **self.tally.as_dict(),
            "settled": self.settled,
            "seconds": round(self.seconds, 1),
            "injected": self.injected,
            "dcs_calls": self.stats["calls_by_path"].get("/event", 0),
            "retry_after_gap": self.retry_after_gap,
            "problems": self.problems(),
        }


def run_fault(fault: Fault, scale: Scale, endpoints: Mapping[str, str]) -> Result:
    """One fault, on fresh queues and a fresh simulator, with the moto servers of ``endpoints``."""
    aws = create_resources(sqs_endpoint=endpoints["sqs"], dynamodb_endpoint=endpoints["dynamodb"])
    config = SimulatorConfig.load().replace(seed=4242)
    with DcsSimulator(config=config, port=0) as sim, environment(run_env(sim, aws, fault, scale)):
        function = load_function()
        sender = wire(function)
        crashes = fault.crash(sender, crash_points(scale.workload)) if fault.crash else None
        started = time.monotonic()
        poller = signal_poller(
            aws, function, retry_delay_seconds=fault.retry_delay_seconds, remaining_ms=fault.remaining_ms
        )
        with quiet_logs(), poller, FaultSchedule(sim, fault.phases):
            accepted = accept_all(function, scale.workload)
            settled = settle(poller, aws, len(accepted), scale.settle_seconds)
        seconds = time.monotonic() - started
        log, dlq, stats = sim.calls("/event"), dead_letters(aws), sim.stats()
    crashed = list(crashes.crashed) if crashes else []
    return Result(
        fault=fault,
        tally=Tally.of(accepted, processed_calls(log), dlq, crashed=crashed if fault.at_least_once else ()),
        settled=settled,
        seconds=seconds,
        stats=stats,
        crashed=crashed,
        opted_out={seq: dlq.get(seq) for seq, who in accepted.items() if who == OPTED_OUT_UUID},
        retry_after_gap=shortest_wait_after_429(log),
    )


def run_env(sim: DcsSimulator, aws: Aws, fault: Fault, scale: Scale) -> dict[str, str | None]:
    return {
        **bundle_env(sim, aws),
        "AAM_TIMEOUT_MS": str(scale.timeout_ms),
        "AAM_BREAKER_OPEN_SECONDS": str(fault.retry_delay_seconds),
    }


def crash_points(workload: Workload) -> set[int]:
    """Three deliveries spread over the run."""
    return {max(1, workload.signals * quarter // 4) for quarter in (1, 2, 3)}


def shortest_wait_after_429(log: list[dict[str, Any]]) -> float | None:
    """The shortest time between a visitor's 429 and that visitor's next call (None: no 429)."""
    by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in log:
        params = dict(call["params"] or [])
        by_visitor[params.get("d_mid") or params.get("d_uuid") or ""].append(call)
    gaps = [
        later["ts"] - call["ts"]
        for calls in by_visitor.values()
        for call, later in pairwise(calls)
        if call["status"] == 429
    ]
    return round(min(gaps), 3) if gaps else None


def markdown(results: list[Result], scale: Scale) -> str:
    header = (
        "| fault | accepted | received once | duplicated (extra calls) | in the DLQ (reason) | lost "
        "| DCS calls | injected | seconds |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(result) for result in results]
    lines += ["", f"{scale.workload.visitors} visitors x {scale.signals_per_visitor} signals per fault run."]
    lines += [f"- `{result.fault.name}`: {result.fault.what}" for result in results]
    return "\n".join(lines)


def _row(result: Result) -> str:
    tally = result.tally
    dlq = ", ".join(f"{n} `{reason}`" for reason, n in sorted(tally.dead_lettered.items())) or "0"
    injected = ", ".join(f"{kind} {n}" for kind, n in sorted(result.injected.items())) or "-"
    cells = [
        f"`{result.fault.name}`",
        f"{tally.accepted:,}",
        f"{tally.received_once:,}",
        f"{tally.duplicated:,} ({tally.extra_calls:,})",
        dlq,
        f"{len(tally.lost):,}",
        f"{result.stats['calls_by_path'].get('/event', 0):,}",
        injected,
        f"{result.seconds:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the short version (make test's sizes)")
    parser.add_argument("--faults", help=f"comma-separated, from: {', '.join(FAULT_NAMES)} (default: all)")
    parser.add_argument("--visitors", type=int, help="visitors per run, the opted-out one included")
    parser.add_argument("--signals-per-visitor", type=int)
    parser.add_argument("--down-seconds", type=float, help="how long the DCS is down (long version: 60)")
    parser.add_argument("--burst-seconds", type=float, help="each 5xx burst; the 429 storm lasts two")
    parser.add_argument("--json", action="store_true", help="also print each run's figures as JSON lines")
    return parser.parse_args(argv)


def scale_of(args: argparse.Namespace) -> Scale:
    scale = SHORT if args.short else LONG
    changes = {
        name: getattr(args, name)
        for name in ("visitors", "signals_per_visitor", "down_seconds", "burst_seconds")
        if getattr(args, name) is not None
    }
    return dataclasses.replace(scale, **changes)


def run_all(chosen: list[Fault], scale: Scale) -> list[Result]:
    """Each fault in turn; the functions' logs and metrics are dropped, progress goes to stderr."""
    warnings.filterwarnings("ignore", "No application metrics to publish")
    results = []
    with moto_servers() as endpoints:
        for fault in chosen:
            print(f"{fault.name}: {fault.what}", file=sys.stderr, flush=True)
            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                results.append(run_fault(fault, scale, endpoints))
            print(f"  {json.dumps(results[-1].as_dict())}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale = scale_of(args)
    chosen = faults(scale)
    names = args.faults.split(",") if args.faults else list(chosen)
    unknown = set(names) - set(chosen)
    if unknown:
        print(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {', '.join(chosen)}", file=sys.stderr)
        return 2
    results = run_all([chosen[name] for name in names], scale)
    if args.json:
        print("\n".join(json.dumps(result.as_dict()) for result in results))
    print(markdown(results, scale))
    failed = [result for result in results if result.problems()]
    for result in failed:
        print(f"{result.fault.name}: {'; '.join(result.problems())}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

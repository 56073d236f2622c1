"""``make bench``: the bundle's speed, as ratios and differences against references measured in the same run.

These machines are shared and noisy, so no figure is an absolute time judged alone:
- cold start: a fresh interpreter, in Lambda's environment, imports each function and serves its
  first API call (against the DCS simulator), against a Powertools hello-world handler; median of
  interleaved runs. Twice: tracing on (the template's default) and off (``Tracing=Disabled``). A
  third handler, the floor, adds to the hello world only what the contract forces on every
  function (a pydantic model at the boundary, one urllib3 call to the DCS);
- warm overhead: per call, a function's time minus a raw keep-alive ``http.client`` request that
  replays the exact request the function sent, for direct invocation and for an API Gateway
  event; median and p99. urllib3's own cost over that raw request is reported alongside.

Prints a table and writes ``tests/perf/results/latest.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.perf.cost import cost_per_million
from tests.perf.cost import render as render_cost
from tests.support.events import FakeLambdaContext, api_event

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name("results") / "latest.json"
ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"

FIRST_CALLS: dict[str, dict[str, Any]] = {
    "resolve_ids": {"mint": True},
    "send_signals": {"mid": MID, "region_id": 9, "signals": {"c_category": "tents"}},
    "lookup_segments": {"mid": MID, "region_id": 9, "refresh": True},
}
POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
ROUTES = {"resolve_ids": "/ids", "send_signals": "/signals", "lookup_segments": "/segments"}
BUDGETS = {"cold_start_ratio": 1.0, "warm_direct_ms": 0.5, "warm_api_ms": 1.0}
# What Lambda sets (the X-Ray daemon address is a closed local port). Outside Lambda the X-Ray SDK
# builds a botocore session for its sampler, which would slow the reference and flatter the ratios.
LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": str(ROOT),
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}
TRACING = {  # what the template's Tracing parameter sets
    "tracing_on": {"POWERTOOLS_TRACE_DISABLED": "false"},
    "tracing_off": {"POWERTOOLS_TRACE_DISABLED": "true"},
}


def bundle_env(simulator_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AAM_", "PROFILES_", "SIGNAL_", "ENRICH_"))}
    env.update(
        AAM_PARTNER="acme",
        AAM_ORG_ID=ORG,
        AAM_DCS_ENDPOINT=simulator_url,
        **POWERTOOLS_ENV,
        PYTHONPATH=os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)]),
    )
    return env


def add_layer_to_path() -> None:
    """The layer's code, importable as Lambda mounts it (``make bench`` runs from the project root)."""
    for path in (str(ROOT / "layers" / "common"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


def cold_start(simulator_url: str, runs: int, *, tracing: str) -> dict[str, Any]:
    perf = Path(__file__).parent
    targets = {
        "hello_world": (perf / "hello_world_app.py", api_event("GET", "/hello")),
        "floor": (perf / "floor_app.py", api_event("POST", "/floor", body={"mid": MID, "region_id": 9})),
    }
    for name, body in FIRST_CALLS.items():
        targets[name] = (ROOT / "functions" / name / "app.py", api_event("POST", ROUTES[name], body=body))
    env = {**bundle_env(simulator_url), **LAMBDA_ENV, **TRACING[tracing]}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for _ in range(runs):  # interleaved, so drifts in machine load hit every target alike
        for name, (path, event) in targets.items():
            child = [sys.executable, str(perf / "coldstart_child.py"), str(path), json.dumps(event)]
            output = subprocess.run(child, env=env, capture_output=True, text=True, check=True, timeout=120)
            samples[name].append(json.loads(output.stdout.strip().splitlines()[-1]))
    reference = statistics.median(s["total_ms"] for s in samples["hello_world"])
    table = {}
    for name, runs_of in samples.items():
        total = statistics.median(s["total_ms"] for s in runs_of)
        table[name] = {
            "median_total_ms": round(total, 1),
            "median_import_ms": round(statistics.median(s["import_ms"] for s in runs_of), 1),
            "ratio_to_hello_world": round(total / reference, 3),
            "first_call_ok": all(s["result_ok"] for s in runs_of),
            "boto3_loaded": any(s["boto3_loaded"] for s in runs_of),
            "xray_loaded": any(s["xray_loaded"] for s in runs_of),
            "modules": runs_of[-1]["modules"],
        }
    return table


def warm_overhead(simulator_url: str, calls: int) -> dict[str, Any]:
    os.environ.update({k: v for k, v in bundle_env(simulator_url).items() if k.startswith(("AAM_", "POWERTOOLS_"))})
    add_layer_to_path()
    table: dict[str, Any] = {}
    for name, first_call in FIRST_CALLS.items():
        # resolve_ids with known IDs makes no DCS call: its overhead is the whole call.
        body = {"mid": MID, "region_id": 9} if name == "resolve_ids" else first_call
        module = importlib.import_module(f"functions.{name}.app")
        direct = _direct_call(module, body)
        api = _api_call(module, name, body)
        sent = _request_sent_by(direct)
        raw = RawDcsRequest(simulator_url, sent) if sent else None
        table[name] = {"direct": _differences(direct, raw, calls), "api": _differences(api, raw, calls)}
        if sent:
            table[name]["urllib3_over_raw"] = _urllib3_over_raw(simulator_url, sent, calls)
    return table


def _direct_call(module: Any, body: dict[str, Any]) -> Any:
    return lambda: module.lambda_handler(dict(body), FakeLambdaContext())


def _api_call(module: Any, name: str, body: dict[str, Any]) -> Any:
    event = api_event("POST", ROUTES[name], body=body)
    return lambda: module.lambda_handler(event, FakeLambdaContext())


def _request_sent_by(call: Any) -> SentRequest | None:
    """The exact DCS request one call makes (method, target, headers, body), or None if it makes none."""
    from aam_dcs.dcs.http import get_client

    with contextlib.redirect_stdout(io.StringIO()):
        call()  # builds the transport
        transport = get_client()._get_transport()
        seen: list[SentRequest] = []
        original = transport.fetch

        def recording(method: str, base_url: str, target: str, **kwargs: Any) -> Any:
            seen.append(SentRequest(method, target, dict(kwargs["headers"]), kwargs["body"]))
            return original(method, base_url, target, **kwargs)

        transport.fetch = recording  # type: ignore[method-assign]
        try:
            call()
        finally:
            del transport.fetch
    return seen[-1] if seen else None


def _differences(call: Any, raw: RawDcsRequest | None, calls: int) -> dict[str, float]:
    differences = []
    with contextlib.redirect_stdout(io.StringIO()) as sink:
        for _ in range(min(20, calls)):  # warm up: connections, caches, lazy imports
            call()
        for _ in range(calls):
            started = time.perf_counter()
            call()
            function_ms = (time.perf_counter() - started) * 1000
            raw_ms = raw.time_ms() if raw else 0.0
            differences.append(function_ms - raw_ms)
            sink.seek(0)
            sink.truncate()
    return _median_and_p99(differences)


def _urllib3_over_raw(simulator_url: str, sent: SentRequest, calls: int) -> dict[str, float]:
    """urllib3's own cost per request: the same request through a pooled urllib3 connection, minus raw."""
    import urllib3

    pool = urllib3.PoolManager(retries=False).connection_from_url(simulator_url)
    raw = RawDcsRequest(simulator_url, sent)
    differences = []
    for _ in range(calls):
        started = time.perf_counter()
        pool.urlopen(sent.method, sent.target, body=sent.body, headers=sent.headers, redirect=False)
        differences.append((time.perf_counter() - started) * 1000 - raw.time_ms())
    return _median_and_p99(differences)


def _median_and_p99(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"median_ms": round(statistics.median(values), 3), "p99_ms": round(values[int(len(values) * 0.99) - 1], 3)}


@dataclass(frozen=True)
class SentRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes | None


class RawDcsRequest:
    """The reference: the same request over one keep-alive ``http.client`` connection, as bare as HTTP gets."""

    def __init__(self, base_url: str, sent: SentRequest) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        self.sent = sent

    def time_ms(self) -> float:
        started = time.perf_counter()
        self.connection.request(self.sent.method, self.sent.target, body=self.sent.body, headers=self.sent.headers)
        self.connection.getresponse().read()
        return (time.perf_counter() - started) * 1000


Verdict = tuple[str, str, float, float | None, bool | None]  # figure, operator, value, budget, pass


def verdicts(report: dict[str, Any]) -> list[Verdict]:
    rows: list[Verdict] = []
    for mode, table in report.get("cold_start", {}).items():
        for name, row in table.items():
            if name == "hello_world":
                continue
            ratio = row["ratio_to_hello_world"]
            figure = f"cold start {name}, {mode.replace('_', ' ')} (x hello world)"
            if name == "floor":  # a reference, not a function: what the contract alone costs
                rows.append((figure, "<=", ratio, None, None))
            else:
                rows.append((figure, "<=", ratio, BUDGETS["cold_start_ratio"], ratio <= BUDGETS["cold_start_ratio"]))
    for name, row in report.get("warm_overhead", {}).items():
        for kind, budget in (("direct", BUDGETS["warm_direct_ms"]), ("api", BUDGETS["warm_api_ms"])):
            value = row[kind]["median_ms"]
            rows.append((f"warm overhead {name} {kind} (ms, median)", "<=", value, budget, value <= budget))
        if "urllib3_over_raw" in row:
            value = row["urllib3_over_raw"]["median_ms"]
            rows.append((f"  of which urllib3 over raw http.client, {name} (ms, median)", "<=", value, None, None))
    rows.extend(report.get("batch_verdicts", []))
    return rows


@contextlib.contextmanager
def bench_simulator() -> Iterator[str]:
    """The DCS simulator in its own process (its CPU and GIL stay out of the figures), never denylisting:
    the bench calls one ID thousands of times."""
    add_layer_to_path()
    from tests.perf.batch import SimulatorProcess  # imports the layer

    rules = (ROOT / "local" / "dcs_simulator" / "rules.toml").read_text(encoding="utf-8")
    rules = re.sub(r"(?m)^threshold_per_minute = \d+", "threshold_per_minute = 0", rules)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bench.toml"
        config.write_text(rules, encoding="utf-8")
        with SimulatorProcess(config) as simulator:
            yield simulator.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="cold starts per target and mode (default 7)")
    parser.add_argument("--calls", type=int, default=1000, help="warm calls per function and trigger (default 1000)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per batch and memory run (default 10,000)")
    parser.add_argument(
        "--only", default="cold,warm,batch", help="comma-separated parts to run: cold, warm, batch (default all)"
    )
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    os.environ.update(POWERTOOLS_ENV)  # before the layer's Logger and Metrics exist
    report: dict[str, Any] = {"machine": machine()}
    with bench_simulator() as simulator_url:
        if "cold" in parts:
            report["cold_start"] = {mode: cold_start(simulator_url, args.runs, tracing=mode) for mode in TRACING}
        if "warm" in parts:
            report["warm_overhead"] = warm_overhead(simulator_url, args.calls)
    if "batch" in parts:
        from tests.perf.batch import batch_figures, batch_verdicts

        report["batch"] = batch_figures(None, args.rows)
        report["batch_verdicts"] = batch_verdicts(report["batch"])
    if {"warm", "batch"} <= parts:
        report["cost"] = cost_per_million(report)
    report["budgets"] = [
        {"figure": figure, "operator": op, "value": value, "budget": budget, "pass": ok}
        for figure, op, value, budget, ok in verdicts(report)
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(render_table(report))
    if "cost" in report:
        print("\n" + render_cost(report["cost"]))
    return 0


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "arch": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "processor": _cpu_model(),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def render_table(report: dict[str, Any]) -> str:
    lines = ["| figure | value | budget | verdict |", "|---|---|---|---|"]
    for row in report["budgets"]:
        budget = "-" if row["budget"] is None else f"{row['operator']} {row['budget']}"
        verdict = "reference" if row["pass"] is None else ("pass" if row["pass"] else "MISS")
        lines.append(f"| {row['figure']} | {row['value']} | {budget} | {verdict} |")
    for mode, table in report.get("cold_start", {}).items():
        lines += ["", f"| cold start, {mode.replace('_', ' ')} | total ms | import ms | x hello world | modules |"]
        lines.append("|---|---|---|---|---|")
        for name, row in table.items():
            lines.append(
                f"| {name} | {row['median_total_ms']} | {row['median_import_ms']} | "
                f"{row['ratio_to_hello_world']} | {row['modules']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

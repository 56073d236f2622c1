"""``make bench``: the bundle's speed, as ratios and differences against references measured in the same run.

These machines are shared and noisy, so no figure is an absolute time judged alone:
- cold start: a fresh interpreter imports each function and serves its first call (against the DCS
  simulator), against a Powertools hello-world handler; median of interleaved runs;
- warm overhead: per call, a function's time minus a raw keep-alive HTTP request to the same
  simulator URL, for direct invocation and for an API Gateway event; median and p99.

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
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local.dcs_simulator import DcsSimulator, SimulatorConfig
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
BUDGETS = {"cold_start_ratio": 1.0, "warm_direct_ms": 0.5, "warm_api_ms": 1.0}


def bundle_env(simulator_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AAM_", "PROFILES_", "SIGNAL_", "ENRICH_"))}
    env.update(
        AAM_PARTNER="acme",
        AAM_ORG_ID=ORG,
        AAM_DCS_ENDPOINT=simulator_url,
        POWERTOOLS_SERVICE_NAME="bench",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
        POWERTOOLS_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)]),
    )
    return env


def cold_start(simulator_url: str, runs: int) -> dict[str, Any]:
    targets = {"hello_world": (Path(__file__).with_name("hello_world_app.py"), api_event("GET", "/hello"))}
    for name, event in FIRST_CALLS.items():
        targets[name] = (ROOT / "functions" / name / "app.py", event)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    env = bundle_env(simulator_url)
    for _ in range(runs):  # interleaved, so drifts in machine load hit every target alike
        for name, (path, event) in targets.items():
            child = [sys.executable, str(Path(__file__).with_name("coldstart_child.py")), str(path), json.dumps(event)]
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
            "boto3_loaded": any(s["boto3_loaded"] for s in runs_of),
            "modules": runs_of[-1]["modules"],
        }
    return table


def warm_overhead(simulator_url: str, calls: int) -> dict[str, Any]:
    os.environ.update({k: v for k, v in bundle_env(simulator_url).items() if k.startswith(("AAM_", "POWERTOOLS_"))})
    for path in bundle_env(simulator_url)["PYTHONPATH"].split(os.pathsep):
        if path not in sys.path:
            sys.path.insert(0, path)
    table = {}
    raw = RawDcsRequest(simulator_url)
    for name, first_call in FIRST_CALLS.items():
        # resolve_ids with known IDs makes no DCS call: its overhead is the whole call.
        body = {"mid": MID, "region_id": 9} if name == "resolve_ids" else first_call
        module = importlib.import_module(f"functions.{name}.app")
        direct = _differences(lambda m=module, b=body: m.lambda_handler(dict(b), FakeLambdaContext()), raw, calls, name)
        api = _api_call(module, name, body)
        through_api = _differences(api, raw, calls, name)
        table[name] = {"direct": direct, "api": through_api}
    return table


def _api_call(module: Any, name: str, body: dict[str, Any]) -> Any:
    path = {"resolve_ids": "/ids", "send_signals": "/signals", "lookup_segments": "/segments"}[name]
    event = api_event("POST", path, body=body)
    return lambda: module.lambda_handler(event, FakeLambdaContext())


def _differences(call: Any, raw: RawDcsRequest, calls: int, name: str) -> dict[str, float]:
    needs_dcs = name != "resolve_ids"
    differences = []
    with contextlib.redirect_stdout(io.StringIO()) as sink:
        for _ in range(min(20, calls)):  # warm up: connections, caches, lazy imports
            call()
        for _ in range(calls):
            started = time.perf_counter()
            call()
            function_ms = (time.perf_counter() - started) * 1000
            raw_ms = raw.time_ms() if needs_dcs else 0.0
            differences.append(function_ms - raw_ms)
            sink.seek(0)
            sink.truncate()
    differences.sort()
    return {
        "median_ms": round(statistics.median(differences), 3),
        "p99_ms": round(differences[int(len(differences) * 0.99) - 1], 3),
    }


class RawDcsRequest:
    """The reference: one keep-alive GET to the simulator's /event, as bare as HTTP gets."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        self.path = f"/event?d_rtbd=json&d_jsonv=1&d_mid={MID}&d_orgid={ORG.replace('@', '%40')}"
        self.headers = {"Host": "acme.demdex.net", "X-Forwarded-Host": "usw2.demdex.net"}

    def time_ms(self) -> float:
        started = time.perf_counter()
        self.connection.request("GET", self.path, headers=self.headers)
        self.connection.getresponse().read()
        return (time.perf_counter() - started) * 1000


def verdicts(report: dict[str, Any]) -> list[tuple[str, str, float, float, bool]]:
    rows = []
    for name, row in report["cold_start"].items():
        if name != "hello_world":
            ratio = row["ratio_to_hello_world"]
            rows.append((f"cold start {name} (x hello world)", "<=", ratio, BUDGETS["cold_start_ratio"], ratio <= 1.0))
    for name, row in report["warm_overhead"].items():
        for kind, budget in (("direct", BUDGETS["warm_direct_ms"]), ("api", BUDGETS["warm_api_ms"])):
            value = row[kind]["median_ms"]
            rows.append((f"warm overhead {name} {kind} (ms, median)", "<=", value, budget, value <= budget))
    return rows


def bench_simulator_config() -> SimulatorConfig:
    """The demo rules, with denylisting out of the way: the bench calls one ID thousands of times."""
    config = SimulatorConfig.load().to_dict()
    config.setdefault("denylist", {})["threshold_per_minute"] = 10**9
    return SimulatorConfig.from_dict(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="cold starts per target (default 7)")
    parser.add_argument("--calls", type=int, default=300, help="warm calls per function and trigger (default 300)")
    args = parser.parse_args(argv)
    with DcsSimulator(config=bench_simulator_config()) as simulator:
        report: dict[str, Any] = {
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "arch": platform.machine()},
            "cold_start": cold_start(simulator.url, args.runs),
            "warm_overhead": warm_overhead(simulator.url, args.calls),
        }
    report["budgets"] = [
        {"figure": figure, "value": value, "budget": budget, "pass": ok}
        for figure, _, value, budget, ok in verdicts(report)
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render_table(report))
    return 0


def render_table(report: dict[str, Any]) -> str:
    lines = ["| figure | value | budget | verdict |", "|---|---|---|---|"]
    for row in report["budgets"]:
        lines.append(f"| {row['figure']} | {row['value']} | <= {row['budget']} | {'pass' if row['pass'] else 'MISS'} |")
    cold = report["cold_start"]
    lines += ["", "| cold start | median total ms | median import ms | x hello world |", "|---|---|---|---|"]
    for name, row in cold.items():
        lines.append(
            f"| {name} | {row['median_total_ms']} | {row['median_import_ms']} | {row['ratio_to_hello_world']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

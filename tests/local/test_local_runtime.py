"""Two ways the local stack could misstate the bundle's speed: a container that changes threads
(the layer's per-thread boto3 resources rebuilt on every request), and Nagle's algorithm holding
every response body for the client's delayed ACK (40 ms)."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from local.functions import LocalFunction
from local.gateway import Gateway
from local.template import ApiRoute, Function


def probe_function(code_dir: Path) -> Function:
    (code_dir / "app.py").write_text(
        "import threading\n\ndef lambda_handler(event, context):\n    return threading.get_ident()\n"
    )
    return Function(
        logical_id="ProbeFunction",
        code_uri=str(code_dir),
        handler="app.lambda_handler",
        runtime="python3.13",
        timeout=3,
        memory_size=128,
        environment={},
        events={},
    )


def test_a_warm_container_runs_every_invocation_on_its_own_thread(tmp_path: Path) -> None:
    function = LocalFunction(probe_function(tmp_path), max_containers=1)
    try:
        first = function.invoke({})
        with ThreadPoolExecutor(1) as caller:
            second = caller.submit(function.invoke, {}).result()
        assert first == second
        assert first != threading.get_ident()
        assert function.cold_starts == 1
    finally:
        function.close()


def test_keep_alive_responses_are_not_held_back_by_nagle() -> None:
    def invoke(function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}

    gateway = Gateway([ApiRoute("F", "Get", "/ok", "GET")], invoke, port=0)
    url = gateway.start()
    try:
        with requests.Session() as session:
            session.get(f"{url}/ok", timeout=5)
            durations = []
            for _ in range(15):
                started = time.perf_counter()
                assert session.get(f"{url}/ok", timeout=5).json() == {"ok": True}
                durations.append(time.perf_counter() - started)
        assert statistics.median(durations) < 0.03  # a held body costs 40 ms each time
    finally:
        gateway.stop()

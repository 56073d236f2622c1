"""Two ways the local stack could misstate the bundle's speed: a container that changes threads
(the layer's per-thread boto3 resources rebuilt on every request), and Nagle's algorithm holding
every response body for the client's delayed ACK (40 ms)."""

from __future__ import annotations

import socket
import threading
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
    """Every connection the gateway accepts has TCP_NODELAY: with Nagle's algorithm on, each keep-alive
    response's body waits for the client's delayed ACK of its headers (40 ms on Linux)."""

    def invoke(function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}

    gateway = Gateway([ApiRoute("F", "Get", "/ok", "GET")], invoke, port=0)
    gateway.bind()
    handler = gateway._server.RequestHandlerClass  # this gateway's own subclass
    no_delay: list[int] = []
    real_setup = handler.setup

    def setup(self: Any) -> None:
        real_setup(self)
        no_delay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    handler.setup = setup
    url = gateway.serve()
    try:
        for _ in range(2):  # two connections
            with requests.Session() as session:
                assert session.get(f"{url}/ok", timeout=5).json() == {"ok": True}
        assert len(no_delay) == 2
        assert all(no_delay)
    finally:
        gateway.stop()

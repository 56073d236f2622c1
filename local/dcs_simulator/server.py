"""The loopback HTTP server (stdlib ``ThreadingHTTPServer``) and the :class:`DcsSimulator` API."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .config import SimulatorConfig
from .engine import Engine, Plan, Request, Response
from .faults import FaultConfigError
from .rules import RuleError

ADMIN_PREFIX = "/_admin/"
#: bodies up to this size are read and discarded before a 413, so the client sees the answer, not a reset
DISCARD_LIMIT = 1 << 20


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: Engine, verbose: bool) -> None:
        self.engine = engine
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked on a keep-alive socket so shutdown is quick."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per call
    disable_nagle_algorithm = True
    server_version = "DCS-Simulator/1.0"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"dcs-simulator {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # --- plumbing ---------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path or "/"
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        length = max(length, 0)
        if path == "/_admin" or path.startswith(ADMIN_PREFIX):
            body = self.rfile.read(length) if length else b""
            self._send(_admin(self.server.engine, method, path, split.query, body))
            return
        self._dcs(method, path, split.query, length)

    def _dcs(self, method: str, path: str, raw_query: str, length: int) -> None:
        engine = self.server.engine
        limit = engine.config.max_post_bytes
        body = b""
        if length and length <= limit:
            body = self.rfile.read(length)
        elif length:  # too large: read and drop it (or give up on the connection), the answer is 413
            if length <= DISCARD_LIMIT:
                self.rfile.read(length)
            self.close_connection = True
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(method, path, raw_query, headers, body, length)
        plan = engine.begin(req)
        # The call is finished (logged, out of the in-flight set) *before* any byte of the answer goes out:
        # a client that sends its next call for the same user the moment it reads this answer must not
        # look concurrent, and a test that reads the log right after the answer must see it complete.
        try:
            response, outcome = self._decide(req, plan)
        except Exception as exc:  # a simulator bug: answer 500 rather than drop the connection
            response = Response.json(500, {"error": "simulator_error", "message": repr(exc)})
            outcome = "answered"
            engine.finish(plan, response, outcome)
            self.close_connection = True
            self._send(response)
            raise
        engine.finish(plan, response, outcome)
        try:
            if outcome == "reset":
                self._reset()
            elif outcome == "hang":
                # processed, but the answer never comes: the client times out (or sees the close)
                engine.shutdown_event.wait(plan.decision.hang_seconds)
                self.close_connection = True
            elif outcome == "server_stopped":
                self.close_connection = True
            elif response is not None:
                self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _decide(self, req: Request, plan: Plan) -> tuple[Response | None, str]:
        """The answer and the outcome ("answered", "reset", "hang", "server_stopped"); sleeps for latency."""
        engine = self.server.engine
        if plan.early is not None:
            return plan.early, "answered"
        decision = plan.decision
        if decision.latency_seconds > 0 and engine.shutdown_event.wait(decision.latency_seconds):
            return None, "server_stopped"
        if decision.kind == "reset":
            return None, "reset"
        if decision.kind == "error":
            return Response(decision.status, b"Service Unavailable\n", "text/plain", logged="Service Unavailable"), (
                "answered"
            )
        response = engine.process(req, plan)
        if decision.kind == "hang":
            return response, "hang"
        if decision.kind == "malformed":
            cut = max(1, len(response.body) // 2)
            truncated = response.body[:cut]
            return Response(200, truncated, "application/json", logged=truncated.decode("utf-8", "replace")), (
                "answered"
            )
        return response, "answered"

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)

    def _reset(self) -> None:
        """Close the socket with SO_LINGER 0: the peer gets a TCP RST and no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()


def _admin(engine: Engine, method: str, path: str, raw_query: str, body: bytes) -> Response:
    """The ``/_admin/`` endpoints. Never logged as calls, never faulted."""
    route = path[len(ADMIN_PREFIX) :].strip("/") if path.startswith(ADMIN_PREFIX) else ""
    query = dict(parse_qsl(raw_query))
    try:
        payload = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError as exc:
        return Response.json(400, {"error": "bad_json", "message": str(exc)})
    try:
        if (method, route) == ("GET", "health"):
            return Response.json(200, engine.health())
        if route == "calls" and method == "GET":
            calls = engine.calls()
            if "path" in query:
                calls = [c for c in calls if c["path"] == query["path"]]
            if "since" in query:
                calls = [c for c in calls if c["seq"] > int(query["since"])]
            return Response.json(200, {"calls": calls, "count": len(calls)})
        if route == "calls" and method == "DELETE":
            engine.clear_calls()
            return Response.json(200, {"cleared": True})
        if route == "faults" and method == "GET":
            return Response.json(200, engine.fault_config())
        if route == "faults" and method in ("POST", "PUT"):
            return Response.json(200, engine.set_faults(_object(payload)))
        if route == "rules" and method == "GET":
            return Response.json(200, engine.rules_dict())
        if route == "rules" and method in ("POST", "PUT"):
            return Response.json(200, engine.set_rules(_object(payload)))
        if route == "reset" and method == "POST":
            engine.reset()
            return Response.json(200, {"reset": True})
        if route == "stats" and method == "GET":
            return Response.json(200, engine.stats())
        if route == "config" and method == "GET":
            return Response.json(200, engine.config.to_dict())
        if route.startswith("profiles/") and method == "GET":
            region = int(query["region"]) if "region" in query else None
            view = engine.profile_view(route.split("/", 1)[1], region)
            if view is None:
                return Response.json(404, {"error": "not_found", "message": "no such profile"})
            return Response.json(200, view)
    except (FaultConfigError, RuleError, ValueError) as exc:
        return Response.json(400, {"error": "invalid", "message": str(exc)})
    return Response.json(404, {"error": "not_found", "message": f"no admin endpoint {method} {path}"})


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    return payload


class DcsSimulator:
    """A DCS and ID service on loopback, for tests and the local stack.

    >>> with DcsSimulator() as sim:  # doctest: +SKIP
    ...     requests.get(f"{sim.url}/event?d_rtbd=json", headers={"Host": "acme.demdex.net",
    ...                  "X-Forwarded-Host": "usw2.demdex.net"})
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
    ) -> None:
        self.config = config if config is not None else SimulatorConfig.load()
        self.host = host
        self.port = port
        self.verbose = verbose
        self.engine = Engine(self.config)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve in a background thread; returns the base URL (``http://127.0.0.1:54321``)."""
        if self._server is not None:
            return self.url
        self.engine.shutdown_event.clear()
        self._server = _Server((self.host, self.port), self.engine, self.verbose)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="dcs-simulator", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; wakes hanging and sleeping handlers so this returns quickly."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.engine.shutdown_event.set()
        stopper = threading.Thread(target=server.shutdown, name="dcs-simulator-stop")
        stopper.start()
        # wake serve_forever's select() now rather than at its next poll
        with contextlib.suppress(OSError):
            socket.create_connection(server.server_address[:2], timeout=0.5).close()
        stopper.join(timeout)
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> DcsSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inspection and control (the same as the admin endpoints) ---------------------------------------

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        """The call log (every non-admin request received), oldest first; optionally one path only."""
        calls = self.engine.calls()
        return [c for c in calls if c["path"] == path] if path else calls

    def clear_calls(self) -> None:
        self.engine.clear_calls()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the fault config (no arguments clears it); the RNG is re-seeded. Returns the new config."""
        return self.engine.set_faults(faults)

    def faults(self) -> dict[str, Any]:
        return self.engine.fault_config()

    def set_rules(self, rules: dict[str, Any]) -> dict[str, Any]:
        """Replace traits / segments / destinations (same shape as rules.toml); returns the rules in force."""
        return self.engine.set_rules(rules)

    def reset(self) -> None:
        """Profiles, links, opt-outs, denylists, call log, counters, rules and faults back to the config."""
        self.engine.reset()

    def profile(self, uuid: str, region: int | None = None) -> dict[str, Any] | None:
        """The stored profile for a UUID (None if unknown)."""
        return self.engine.profile_view(uuid, region)

    def stats(self) -> dict[str, Any]:
        return self.engine.stats()

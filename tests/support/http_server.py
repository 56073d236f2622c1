"""A scripted HTTP server on loopback, for tests that need a real socket instead of a mock.

The server listens on ``127.0.0.1`` on a free port, serves HTTP/1.1 with keep-alive from a
background thread, answers each request with the next scripted :class:`Reply` (or the
default once the script is used up), and records every request it receives, byte for byte.

Usage::

    from tests.support.http_server import Reply, ScriptedServer

    with ScriptedServer() as server:
        server.enqueue(
            Reply(status=503, headers={"Retry-After": "0.2"}),
            Reply.json({"uuid": "123", "dcs_region": 9}),
        )
        call_something(base_url=server.base_url)
        first, second = server.requests
        assert first.header("Host") == "acme.demdex.net"
        assert second.received_at - first.received_at >= 0.2

A reply can also be delayed (``delay=`` seconds, for read timeouts) or replaced by a
connection reset after the request was read (``Reply.reset_connection()``). The default
reply may be a function of the recorded request, for simple routing.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote_to_bytes

Headers = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, headers, body; or a delay; or a connection reset."""

    status: int = 200
    headers: Headers = ()
    body: bytes = b""
    delay: float = 0.0
    reset: bool = False

    @classmethod
    def json(cls, payload: Any, *, status: int = 200, headers: Headers = (), delay: float = 0.0) -> Reply:
        """A JSON body (``payload`` serialized) with ``Content-Type: application/json``."""
        body = json.dumps(payload).encode()
        return cls(status, [("Content-Type", "application/json"), *_pairs(headers)], body, delay)

    @classmethod
    def text(
        cls, text: str | bytes, *, status: int = 200, content_type: str = "text/plain", headers: Headers = ()
    ) -> Reply:
        """A raw body, for malformed answers (bad JSON, JSONP, a pixel...)."""
        body = text.encode() if isinstance(text, str) else text
        return cls(status, [("Content-Type", content_type), *_pairs(headers)], body)

    @classmethod
    def reset_connection(cls, *, delay: float = 0.0) -> Reply:
        """Read the request, then drop the connection with a TCP reset and no answer."""
        return cls(delay=delay, reset=True)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it: nothing decoded unless asked."""

    method: str
    path: str
    raw_query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    received_at: float  # time.monotonic() when the request had been read
    client_port: int  # tells connections apart (keep-alive reuse)

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or ``None``."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of a header (case-insensitive), in order."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def query_pairs(self) -> list[tuple[str, str]]:
        """The query decoded as UTF-8 percent-encoding (``+`` stays ``+``), in order."""
        return decode_pairs(self.raw_query)

    def form_pairs(self) -> list[tuple[str, str]]:
        """A form-urlencoded body decoded like :meth:`query_pairs`."""
        return decode_pairs(self.body.decode("ascii"))


Responder = Callable[[RecordedRequest], Reply]


def decode_pairs(encoded: str) -> list[tuple[str, str]]:
    """``k=v&k2=v2`` decoded strictly: percent-escapes as UTF-8, no ``+``-as-space rule."""
    if not encoded:
        return []
    pairs = (part.partition("=") for part in encoded.split("&"))
    return [(_unquote(key), _unquote(value)) for key, _, value in pairs]


def _unquote(text: str) -> str:
    return unquote_to_bytes(text).decode("utf-8")


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def closed_port() -> int:
    """A loopback port nobody listens on (just bound and released): connections get refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class ScriptedServer:
    """Loopback HTTP/1.1 server answering from a script; a context manager.

    - :meth:`enqueue` replies (consumed in order, one per request, whatever the path);
    - ``default`` answers once the script is empty (a :class:`Reply`, or a function of the request);
    - :attr:`requests` lists what was received; :meth:`wait_for_requests` waits for more.
    """

    def __init__(self, *, default: Reply | Responder | None = None) -> None:
        self.default: Reply | Responder = default or Reply.json({})
        self._script: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Listen on a free loopback port and serve from a daemon thread."""
        self._httpd = _Httpd(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and pending delays."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def enqueue(self, *replies: Reply) -> None:
        """Add replies to the script; each request consumes the next one."""
        with self._changed:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        with self._changed:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, in arrival order."""
        with self._changed:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 2.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests arrived; returns them (fewer on timeout)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._requests) >= count, timeout=timeout)
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and unused replies."""
        with self._changed:
            self._script.clear()
            self._requests.clear()

    @property
    def _server(self) -> _Httpd:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return self._httpd

    def _reply_to(self, request: RecordedRequest) -> Reply:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted
        return self.default if isinstance(self.default, Reply) else self.default(request)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, script: ScriptedServer) -> None:
        self.script = script
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with suppress(OSError, ValueError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # idle keep-alive connections end after this
    server: _Httpd

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def handle(self) -> None:
        with suppress(OSError, ValueError):
            super().handle()

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        with suppress(OSError, ValueError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`ScriptedServer.requests` instead."""

    def _handle_any(self) -> None:
        request = self._record()
        reply = self.server.script._reply_to(request)
        self.server.script._pause(reply.delay)
        if reply.reset:
            self._reset()
        else:
            self._answer(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _handle_any

    def _record(self) -> RecordedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, raw_query = self.path.partition("?")
        return RecordedRequest(
            method=self.command,
            path=path,
            raw_query=raw_query,
            headers=tuple(self.headers.items()),
            body=body,
            received_at=time.monotonic(),
            client_port=self.client_address[1],
        )

    def _answer(self, reply: Reply) -> None:
        self.send_response(reply.status)
        headers = _pairs(reply.headers)
        for name, value in headers:
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in headers):
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()

    def _reset(self) -> None:
        """Close with RST (SO_LINGER 0): the client sees 'connection reset', not a clean close."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

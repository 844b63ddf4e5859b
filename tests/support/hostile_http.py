"""A hostile HTTP server on 127.0.0.1: what a source or webhook receiver that means harm does.

Routes (GET for sources; POST too, for webhook receivers):
- ``/file/<name>``: a small CSV of the orders dataset (``/gzip/<name>``: the same with one
  ``Content-Encoding: gzip`` layer).
- ``/stacked``: ``Content-Encoding: gzip, gzip``, a few KB on the wire, ``inner_bytes`` inside.
- ``/trickle``: headers, then one body byte every ``interval`` seconds, without end.
- ``/slow-headers``: the status line and headers one byte every ``interval`` seconds.
- ``/endless``: a chunked body that never ends, as fast as the socket takes it.
- ``/to/<url>``: a 302 to ``<url>`` (as given, e.g. ``/to/http://169.254.169.254/``).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import socket
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ORDERS_CSV = b"id,email,amount,status,ts,user_id\n1,a@example.com,10.00,new,,\n"
_MIB = 2**20


@functools.lru_cache(maxsize=4)
def stacked_gzip(inner_bytes: int) -> bytes:
    """``inner_bytes`` zero bytes gzip'd twice: ~1000:1 per layer, so MBs inside KBs."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(_MIB)
    parts = [deflate.compress(block) for _ in range(inner_bytes // _MIB)]
    parts.append(deflate.compress(bytes(inner_bytes % _MIB)))
    parts.append(deflate.flush())
    return gzip.compress(b"".join(parts), compresslevel=9)


class HostileServer:
    """Serves the routes above from daemon threads; counts the paths it was asked for."""

    def __init__(self, *, interval: float = 0.5, inner_bytes: int = 256 * _MIB) -> None:
        self.interval = interval
        self.inner_bytes = inner_bytes
        self.hits: Counter[str] = Counter()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def hit(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def stopping(self) -> bool:
        return self._stopped.is_set()

    def pause(self) -> bool:
        """Wait one interval; False once the server is stopping (the trickle ends)."""
        return not self._stopped.wait(self.interval)


class _Handler(BaseHTTPRequestHandler):
    server_state: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        """A client that hangs up (a TLS probe, a cut-off transfer) is no error here."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_GET(self) -> None:
        self.server_state.hit(self.path)
        route, _, rest = self.path.lstrip("/").partition("/")
        handler = getattr(self, f"route_{route.replace('-', '_')}", None)
        try:
            if handler is None:
                self._send(404, b"not here")
            else:
                handler(rest)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def route_file(self, name: str) -> None:
        self._send(200, ORDERS_CSV)

    def route_gzip(self, name: str) -> None:
        self._send(200, gzip.compress(ORDERS_CSV), {"Content-Encoding": "gzip"})

    def route_stacked(self, rest: str) -> None:
        body = stacked_gzip(self.server_state.inner_bytes)
        self._send(200, body, {"Content-Encoding": "gzip, gzip", "Content-Type": "text/csv"})

    def route_to(self, url: str) -> None:
        self._send(302, b"", {"Location": url})

    def route_trickle(self, rest: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        self.wfile.write(ORDERS_CSV)
        while self.server_state.pause():
            self.wfile.write(b"1")
            self.wfile.flush()
        self.close_connection = True

    def route_slow_headers(self, rest: str) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Filler: " + b"x" * 10_000
        for byte in head:
            if not self.server_state.pause():
                break
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
        self.close_connection = True

    def route_endless(self, rest: str) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        data = b"2,b@example.com,1.00,new,,\n" * 40_000
        block = b"%x\r\n%s\r\n" % (len(data), data)
        while not self.server_state.stopping():
            self.wfile.write(block)
        self.close_connection = True


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

"""A URL source that holds its answer until released: a batch kept in ``copying`` on purpose."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_HELD_BYTES_PER_SECOND = 2048


class GatedSource:
    """Serves one file at ``url`` on 127.0.0.1, slowly until ``release()`` is called and the
    rest at once then, so a test can line things up while the batch copies (the file must be
    larger than what trickles meanwhile)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.gate = threading.Event()
        handler = type("Handler", (_Handler,), {"source": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{path.name}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def release(self) -> None:
        self.gate.set()

    def __enter__(self) -> GatedSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    source: GatedSource

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(self.source.path.stat().st_size))
        self.end_headers()
        with self.source.path.open("rb") as body:
            # 2 KiB a second until released: the copy waits as long as needed, above the
            # slowest rate a source may send (BATCHYARD_SOURCE_MIN_BYTES_PER_SECOND, 1 KiB).
            while not self.source.gate.wait(1.0):
                self.wfile.write(body.read(_HELD_BYTES_PER_SECOND))
                self.wfile.flush()
            while block := body.read(1 << 20):
                self.wfile.write(block)

    def log_message(self, format: str, *args: Any) -> None:
        pass

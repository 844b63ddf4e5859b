"""A scripted endpoint on 127.0.0.1 for the http operation: flaky, refusing, slow, by record id.

Each request's JSON body is a record with an integer ``id``. The script (a function of the id)
says how to answer: ``("ok", None)`` 200 with JSON, ``("flaky", n)`` 503 (or 429 with
Retry-After) for the first n requests of that record then 200, ``("refuse", None)`` 400,
``("slow", seconds)`` 200 after a pause. Every request is kept, with its Idempotency-Key.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[int], tuple[str, float | None]]


@dataclass(frozen=True)
class Seen:
    key: str
    headers: dict[str, str]
    record: dict[str, Any]
    status: int


def answer_for(record: dict[str, Any]) -> dict[str, Any]:
    """What the receiver answers a record it accepts (a nested object, to test outputs)."""
    return {"id": record["id"], "echo": {"name": record.get("name"), "twice": 2 * record["id"]}}


class OperationReceiver:
    def __init__(self, script: Script, *, retry_after: bool = False) -> None:
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        #: Requests being answered now, the most there ever were at once, and when each began.
        self.in_flight = 0
        self.most_in_flight = 0
        self.started: list[float] = []
        tries: Counter[int] = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                with receiver.lock:
                    receiver.started.append(time.monotonic())
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                self._answer()

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                record = json.loads(body)
                kind, arg = script(int(record["id"]))
                with receiver.lock:
                    tries[record["id"]] += 1
                    attempt = tries[record["id"]]
                status, payload, extra = 200, answer_for(record), {}
                if kind == "flaky" and attempt <= int(arg or 0):
                    status, payload = (
                        (429, {"error": "slow down"})
                        if retry_after
                        else (
                            503,
                            {"error": "busy"},
                        )
                    )
                    if retry_after:
                        extra["Retry-After"] = "0"
                elif kind == "refuse":
                    status, payload = 400, {"error": f"record {record['id']} is not welcome"}
                elif kind == "slow":
                    time.sleep(float(arg or 0))
                with receiver.lock:
                    receiver.seen.append(
                        Seen(
                            self.headers.get("Idempotency-Key", ""),
                            dict(self.headers),
                            record,
                            status,
                        )
                    )
                    # Counted out before the answer: till then the client holds its slot.
                    receiver.in_flight -= 1
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/records"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def requests(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)

    def __enter__(self) -> OperationReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

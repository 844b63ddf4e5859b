"""The http operation's throughput against a local receiver, at the default concurrency.

    uv run --group dev python -m benchmarks.http_operation --records 20000

A ``batchyard serve`` process (embedded SQLite) sends every record of a generated CSV to a
receiver on 127.0.0.1 (an asyncio HTTP/1.1 server answering 200 with a small JSON body at once,
so the number measures batchyard's side). Reported: records per second over the processing
stage (from the batch's started_ts to completed_ts), and what the receiver counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
from tests.support.servers import ADMIN_TOKEN, BatchyardServer

ITEMS = {
    "name": "items",
    "columns": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}],
}


class FastReceiver:
    """Keep-alive HTTP/1.1 on asyncio in its own thread: reads a request, answers 200 JSON."""

    def __init__(self) -> None:
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b'{"ok":true}'
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self.count += 1
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def start(self) -> str:
        self.thread.start()
        self.ready.wait()
        return f"http://127.0.0.1:{self.port}/records"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the server's")
    args = parser.parse_args()
    receiver = FastReceiver()
    url = receiver.start()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "items.csv"
        data.write_text("id,name\n" + "".join(f"{i},item {i}\n" for i in range(args.records)))
        server = BatchyardServer(Path(tmp) / "data").start()
        try:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
                client.post("/datasets", json=ITEMS).raise_for_status()
                settings: dict[str, object] = {"url": url}
                if args.concurrency:
                    settings["concurrency"] = args.concurrency
                created = client.post(
                    "/batches",
                    params={
                        "dataset": "items",
                        "operation": "http",
                        "options": json.dumps({"operation": settings}),
                    },
                    content=data.read_bytes(),
                )
                created.raise_for_status()
                batch_id = created.json()["batch"]
                while (batch := client.get(f"/batches/{batch_id}").json())["status"] not in {
                    "completed",
                    "failed",
                }:
                    time.sleep(0.2)
        finally:
            server.stop()
    seconds = batch["completed_ts"] - batch["started_ts"]
    print(
        f"http operation, concurrency {args.concurrency or 8}: {batch['status']}, "
        f"{batch['successful_operations']:,} of {args.records:,} records in {seconds:.2f} s "
        f"= {args.records / seconds:,.0f} records/s; receiver got {receiver.count:,} requests"
    )


if __name__ == "__main__":
    main()

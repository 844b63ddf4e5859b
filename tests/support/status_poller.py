"""Times ``GET /batches/{id}`` every 50 ms until the batch ends, in a process of its own.

    python tests/support/status_poller.py URL TOKEN BATCH_ID

Prints the answer times in seconds as one JSON list. Its own process, as a dashboard is: timed
from a thread of a test that also reads hundreds of streams, the answers would wait for that
test's interpreter lock as well as for the server.
"""

from __future__ import annotations

import json
import sys
import time

import httpx

TERMINAL = {"completed", "failed", "cancelled", "hash_mismatch", "validation_failed"}


def poll(url: str, token: str, batch_id: str, within: float = 180) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = http.get(f"/batches/{batch_id}")
            latencies.append(time.monotonic() - started)
            response.raise_for_status()
            if response.json()["status"] in TERMINAL:
                return latencies
            time.sleep(0.05)
    raise TimeoutError(f"batch {batch_id} did not end within {within}s")


if __name__ == "__main__":
    print(json.dumps(poll(*sys.argv[1:4])))

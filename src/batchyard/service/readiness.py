"""Readiness: can this process do its work right now? The metadata database, blob storage and,
in queue mode, the job queue are each asked once, with a deadline, so a load balancer's probe
never hangs on a dependency that stopped answering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from batchyard.service.container import Services
from batchyard.store import probes

logger = logging.getLogger("batchyard.readiness")

#: Seconds one check may take before its dependency counts as down.
CHECK_TIMEOUT = 5.0
#: Where the storage check writes its few bytes (rewritten on every check, never read by users).
PROBE_KEY = "health/ready-probe"


@dataclass(frozen=True, slots=True)
class Check:
    """One dependency's answer: ``ok``, with what it reported or why it is down."""

    ok: bool
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    @property
    def down(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check.ok]


async def check_readiness(svc: Services) -> Readiness:
    """Every dependency this deployment uses, checked concurrently."""
    probes_by_name: dict[str, Callable[[], Awaitable[dict[str, object]]]] = {
        "database": lambda: _database(svc),
        "storage": lambda: _storage(svc),
    }
    if svc.settings.runner == "queue":
        probes_by_name["queue"] = lambda: _queue(svc)
    names = list(probes_by_name)
    results = await asyncio.gather(*(_run(name, probes_by_name[name]) for name in names))
    return Readiness(dict(zip(names, results, strict=True)))


async def _run(name: str, probe: Callable[[], Awaitable[dict[str, object]]]) -> Check:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return Check(True, await probe())
    except TimeoutError:
        logger.warning("readiness: %s did not answer within %.0f s", name, CHECK_TIMEOUT)
        return Check(False, {"error": f"no answer within {CHECK_TIMEOUT:.0f} s"})
    except Exception as error:
        # The full error (hosts, paths) goes to the log only: /ready answers without a token.
        logger.warning("readiness: %s is down: %s", name, error)
        return Check(False, {"error": type(error).__name__})


async def _database(svc: Services) -> dict[str, object]:
    async with svc.store.read() as conn:
        await probes.ping(conn)
    return {"dialect": svc.store.dialect_name}


async def _storage(svc: Services) -> dict[str, object]:
    await svc.blobs.write_stream(PROBE_KEY, _probe_bytes())
    return {"writable": True}


async def _queue(svc: Services) -> dict[str, object]:
    async with svc.store.read() as conn:
        stats = await probes.queue_stats(conn, svc.settings.queue_stalled_seconds)
    return {"queued": stats.queued, "running": stats.running, "live_workers": stats.live_workers}


async def _probe_bytes() -> AsyncIterator[bytes]:
    yield b"ok"

"""``GET /metrics``: this process's instruments plus the deployment's state, read at scrape time.

Batches by status and the job queue are facts about the whole deployment, not about one
process: they are read from the metadata database on every scrape, so every API replica reports
the same numbers and none is lost when a process restarts.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterable

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from batchyard.domain.errors import Unauthenticated
from batchyard.domain.statuses import BatchStatus
from batchyard.service.container import Services
from batchyard.store import probes

logger = logging.getLogger("batchyard.metrics")

#: Seconds the database may take to answer a scrape before it is reported down.
SCRAPE_TIMEOUT = 5.0
#: The Prometheus text format's media type.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    """Families computed once for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def check_metrics_token(svc: Services, token: str | None) -> None:
    """Open to all unless BATCHYARD_METRICS_TOKEN is set; then that bearer token is needed."""
    wanted = svc.settings.metrics_token
    if wanted is None:
        return
    if token is None or not hmac.compare_digest(token.encode(), wanted.encode()):
        raise Unauthenticated("GET /metrics needs the token in BATCHYARD_METRICS_TOKEN")


async def render_metrics(svc: Services) -> bytes:
    """The text a Prometheus scrape gets from this process."""
    families = await _deployment_families(svc)
    return generate_latest(REGISTRY) + generate_latest(_Snapshot(families))


async def _deployment_families(svc: Services) -> list[Metric]:
    up = GaugeMetricFamily(
        "batchyard_database_up", "1 when the metadata database answered this scrape, else 0."
    )
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            families = await _read_database(svc)
    except Exception as error:  # the scrape still reports this process's own counters
        logger.warning("metrics: the metadata database did not answer: %s", error)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, *families]


async def _read_database(svc: Services) -> list[Metric]:
    async with svc.store.read() as conn:
        by_status = await probes.batches_by_status(conn)
        queue = (
            await probes.queue_stats(conn, svc.settings.queue_stalled_seconds)
            if svc.settings.runner == "queue"
            else None
        )
    batches = GaugeMetricFamily(
        "batchyard_batches", "Batches in each status now (all users).", labels=["status"]
    )
    for status in BatchStatus:
        batches.add_metric([status.value], by_status.get(status.value, 0))
    return [batches] if queue is None else [batches, *_queue_families(queue)]


def _queue_families(queue: probes.QueueStats) -> list[Metric]:
    jobs = GaugeMetricFamily(
        "batchyard_queue_jobs", "Jobs in the queue now, by state.", labels=["state"]
    )
    jobs.add_metric(["queued"], queue.queued)
    jobs.add_metric(["running"], queue.running)
    return [
        jobs,
        GaugeMetricFamily(
            "batchyard_queue_oldest_job_age_seconds",
            "How long the oldest queued job has waited for a worker (0: none waits).",
            value=queue.oldest_queued_seconds,
        ),
        GaugeMetricFamily(
            "batchyard_queue_live_workers",
            "Workers whose heartbeat is within BATCHYARD_QUEUE_STALLED_SECONDS.",
            value=queue.live_workers,
        ),
    ]

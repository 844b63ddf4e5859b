"""This process's own Prometheus instruments: what it did since it started.

Counters of work done (records, bytes, stage durations, webhook deliveries, HTTP requests) live
in the process that did the work, as Prometheus expects, and are summed across processes by
the query. Facts about the whole deployment (batches by status, the queue) are not kept here:
``service.metrics`` reads them from the database at scrape time, so every process agrees.
Instruments are registered once, in prometheus_client's default registry, the first time this
module is imported; nothing else happens at import.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Stage durations run from seconds to hours.
_STAGE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)

BATCHES_ENDED = Counter(
    "batchyard_batches_ended",
    "Batches this process brought to a terminal status, by that status.",
    ["status"],
)
RECORDS_PROCESSED = Counter(
    "batchyard_records_processed",
    "Records of the batches this process ended: every record processed, failed ones included.",
)
RECORDS_FAILED = Counter(
    "batchyard_records_failed", "Records of the batches this process ended that failed."
)
INPUT_BYTES = Counter(
    "batchyard_input_bytes",
    "Bytes of input this process read in: uploaded request bodies and copied URL sources.",
)
STAGE_SECONDS = Histogram(
    "batchyard_stage_duration_seconds",
    "Time a batch spent in one status of its lifecycle (copying, validating, processing…).",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
WEBHOOKS = Counter(
    "batchyard_webhooks",
    "Webhook deliveries this process finished, by outcome: delivered, or failed (given up).",
    ["outcome"],
)
HTTP_REQUESTS = Counter(
    "batchyard_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "batchyard_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of its body), by method and route template.",
    ["method", "route"],
)
EVENT_READS = Counter(
    "batchyard_event_reads",
    "Reads of followed batches by this process's live events watcher (one per change or poll,"
    " shared by every follower).",
)
EVENT_FOLLOWERS = Gauge(
    "batchyard_event_followers", "Live event streams (GET /batches/{id}/events) open now."
)
STATUS_READS = Counter(
    "batchyard_status_reads",
    "Status reads (batch, history, dataset, row_count) and token lookups (token) this process"
    " answered, by kind and by how: 'remembered' from memory, or 'waited' for the database.",
    ["kind", "answer"],
)

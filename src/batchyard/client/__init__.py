"""The batchyard SDK: ``Client`` and ``AsyncClient`` over the HTTP API, typed models and errors.

from batchyard import Client
client = Client()  # BATCHYARD_TOKEN, BATCHYARD_URL
batch = client.ingest.create_batch("orders", file="orders.csv", hash="auto")
batch = client.ingest.wait(batch.id)
"""

from __future__ import annotations

from batchyard.client._async import AsyncClient, AsyncDatasets, AsyncIngest
from batchyard.client._sync import Client, Datasets, Ingest
from batchyard.client.errors import (
    APIError,
    AuthenticationFailed,
    BatchNotFound,
    BatchyardError,
    Conflict,
    DatasetExists,
    DatasetInUse,
    DatasetNotFound,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ResultsNotReady,
    ServerError,
    TimeoutExceeded,
    TransportError,
    UnexpectedResponse,
    ValidationFailed,
    WaitTimeout,
)
from batchyard.client.models import (
    Batch,
    BatchStatus,
    Column,
    Dataset,
    DatasetSchema,
    Download,
    HistoryEntry,
    InputFormat,
    Operation,
    Source,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncDatasets",
    "AsyncIngest",
    "AuthenticationFailed",
    "Batch",
    "BatchNotFound",
    "BatchStatus",
    "BatchyardError",
    "Client",
    "Column",
    "Conflict",
    "Dataset",
    "DatasetExists",
    "DatasetInUse",
    "DatasetNotFound",
    "DatasetSchema",
    "Datasets",
    "Download",
    "HistoryEntry",
    "Ingest",
    "InputFormat",
    "InvalidTransition",
    "NotFound",
    "Operation",
    "PayloadTooLarge",
    "PermissionDenied",
    "ResultsNotReady",
    "ServerError",
    "Source",
    "TimeoutExceeded",
    "TransportError",
    "UnexpectedResponse",
    "ValidationFailed",
    "WaitTimeout",
]

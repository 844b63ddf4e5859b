"""Probes for orchestrators: ``/health`` (liveness) and ``/ready`` (readiness); no token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from batchyard import __version__
from batchyard.api.deps import ServicesDep
from batchyard.api.schemas import Health
from batchyard.service.readiness import check_readiness

router = APIRouter(tags=["health"])


class CheckPublic(BaseModel):
    ok: bool
    details: dict[str, object]


class ReadinessPublic(BaseModel):
    status: Literal["ready", "unavailable"]
    #: The checks that failed (empty when ready).
    down: list[str]
    checks: dict[str, CheckPublic]


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers. Checks nothing else, so a restart is never the answer
    to a database outage."""
    return Health(version=__version__)


@router.get(
    "/ready",
    response_model=ReadinessPublic,
    responses={503: {"model": ReadinessPublic, "description": "A dependency is down"}},
)
async def ready(svc: ServicesDep) -> JSONResponse:
    """Readiness: 200 when the metadata database, storage and (queue mode) the job queue all
    answer; 503 naming what is down otherwise. Needs no token, and reveals no addresses."""
    readiness = await check_readiness(svc)
    body = ReadinessPublic(
        status="ready" if readiness.ready else "unavailable",
        down=readiness.down,
        checks={
            name: CheckPublic(ok=check.ok, details=check.details)
            for name, check in readiness.checks.items()
        },
    )
    return JSONResponse(body.model_dump(), status_code=200 if readiness.ready else 503)

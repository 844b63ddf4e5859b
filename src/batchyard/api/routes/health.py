from __future__ import annotations

from fastapi import APIRouter

from batchyard import __version__
from batchyard.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness check; the only endpoint that needs no token."""
    return Health(version=__version__)

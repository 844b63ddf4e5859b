"""``GET /metrics``: Prometheus' text format, for scrapers rather than users."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from batchyard.api.deps import ServicesDep, TokenDep
from batchyard.api.routes import error_responses
from batchyard.service.metrics import CONTENT_TYPE, check_metrics_token, render_metrics

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"},
        **error_responses(401),
    },
)
async def metrics(svc: ServicesDep, token: TokenDep) -> Response:
    """Counters of this process and the deployment's state (batches by status, queue).

    Open unless BATCHYARD_METRICS_TOKEN is set; then scrapes send it as a bearer token.
    """
    check_metrics_token(svc, token)
    return Response(await render_metrics(svc), media_type=CONTENT_TYPE)

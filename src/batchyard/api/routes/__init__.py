"""Route modules, one per resource."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from batchyard.api.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "The upload was interrupted (the client disconnected)",
    401: "Missing, invalid, revoked or expired token",
    403: "Your role does not allow this action",
    404: "Not found (including batches of other users)",
    409: "Conflicts with the current status",
    408: "The upload sent nothing for too long and was cut off",
    413: "Input larger than the server accepts",
    422: "Invalid request",
    429: "Rate limit or quota reached: see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an endpoint can answer with."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


def json_response(body: BaseModel | Sequence[BaseModel]) -> Response:
    """``body`` serialised once, by pydantic's own serialiser, for the most polled endpoints.

    A route returning the model has FastAPI validate it again against ``response_model`` before
    serialising it; the route's ``response_model`` still documents the answer.
    """
    if isinstance(body, BaseModel):
        content = body.__pydantic_serializer__.to_json(body, by_alias=True)
    else:
        content = (
            b"["
            + b",".join(m.__pydantic_serializer__.to_json(m, by_alias=True) for m in body)
            + b"]"
        )
    return Response(content, media_type="application/json")

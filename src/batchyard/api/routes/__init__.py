"""Route modules, one per resource."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    return Response(to_json(body), media_type="application/json")


#: At this many encoded answers all are dropped (values stay remembered in the status reads).
_MAX_ENCODED = 1_000
#: What is remembered (``("history", batch id)``…) → the value last encoded for it, what else the
#: answer depended on, and the answer's bytes. One entry per key: a value read afresh replaces
#: the one before, so this holds no more than the status reads themselves.
_encoded: dict[tuple[str, str], tuple[object, tuple[int, ...], bytes]] = {}


def remembered_json(
    key: tuple[str, str], value: object, encode: Callable[[], bytes], *extra: int
) -> Response:
    """The answer for a value the status reads remember (store/fresh.py), encoded once per value.

    While a batch, history or dataset is remembered, every poll of it is answered from the same
    object, and used to build its response models and serialise them again (for a history, one
    model per snapshot). The bytes are kept while ``key`` holds the very same object (and the
    same ``extra``: what else the answer depends on); a value read afresh is encoded anew.
    """
    hit = _encoded.get(key)
    if hit is not None and hit[0] is value and hit[1] == extra:
        return Response(hit[2], media_type="application/json")
    content = encode()
    if len(_encoded) >= _MAX_ENCODED and key not in _encoded:
        _encoded.clear()
    _encoded[key] = (value, extra, content)
    return Response(content, media_type="application/json")


def to_json(body: BaseModel | Sequence[BaseModel]) -> bytes:
    """``body`` serialised by pydantic's own serialiser (see ``json_response``)."""
    if isinstance(body, BaseModel):
        return body.__pydantic_serializer__.to_json(body, by_alias=True)
    return (
        b"[" + b",".join(m.__pydantic_serializer__.to_json(m, by_alias=True) for m in body) + b"]"
    )

"""Dependencies shared by routes: the services and the authenticated principal.

All are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a hop to
another thread and back for what is an attribute lookup, three times on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from batchyard.api.limits import Limits
from batchyard.service.auth import authenticate
from batchyard.service.container import Services
from batchyard.store.users import Principal

_bearer = HTTPBearer(auto_error=False, description="A batchyard token")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    return credentials.credentials if credentials else None


#: The bearer token as sent, for long requests that check it again as they go (event streams).
TokenDep = Annotated[str | None, Depends(get_token)]


async def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


LimitsDep = Annotated[Limits, Depends(get_limits)]


class _BearerPrincipal(HTTPBearer):
    """The bearer scheme (as OpenAPI shows it), resolved at once to the token's principal.

    One dependency where there were two (the scheme's credentials, then the principal), and
    no credentials model built per request: each dependency FastAPI solves costs about as much
    as a remembered status read, and every authenticated request pays for them.
    """

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        """The token's principal; the token's requests per minute are counted first (429 past
        it). Reads the services and limits off the app rather than through more dependencies."""
        token = _bearer_token(request)
        services: Services = request.app.state.services
        if token:
            limits: Limits = request.app.state.limits
            await limits.requests.check(token)
        return await authenticate(services.store, services.secret, token)


def _bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, as ``HTTPBearer`` reads it."""
    authorization = request.headers.get("Authorization")
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


get_principal = _BearerPrincipal(
    auto_error=False, description=_bearer.model.description, scheme_name=_bearer.scheme_name
)

PrincipalDep = Annotated[Principal, Depends(get_principal)]

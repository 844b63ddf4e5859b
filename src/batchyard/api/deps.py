"""Dependencies shared by routes: the services and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from batchyard.service.auth import authenticate
from batchyard.service.container import Services
from batchyard.store.users import Principal

_bearer = HTTPBearer(auto_error=False, description="A batchyard token")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    svc: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    return await authenticate(svc.store, svc.secret, token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]

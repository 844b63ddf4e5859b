"""Administration of users, tokens and roles (``manage_users``), and the caller's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from batchyard.api.deps import PrincipalDep, ServicesDep
from batchyard.api.routes import error_responses
from batchyard.api.schemas_users import (
    Me,
    RoleCreate,
    RoleList,
    RolePublic,
    RoleUpdate,
    TokenCreate,
    TokenIssued,
    TokenList,
    TokenPublic,
    UserCreate,
    UserCreated,
    UserList,
    UserPublic,
    UserUpdate,
    WebhookSecret,
)
from batchyard.domain.permissions import Action
from batchyard.service import users
from batchyard.service.auth import require
from batchyard.service.container import Services
from batchyard.store.users import Principal

router = APIRouter(tags=["users"], responses=error_responses(401, 403, 422))
UserName = Annotated[str, Path(min_length=1, max_length=63)]


def _admin(principal: Principal) -> None:
    require(principal, Action.MANAGE_USERS)


@router.get("/users", response_model=UserList)
async def list_users(svc: ServicesDep, principal: PrincipalDep) -> UserList:
    _admin(principal)
    return UserList(users=[UserPublic.of(u) for u in await users.list_users(svc.store)])


@router.post(
    "/users", status_code=201, response_model=UserCreated, responses=error_responses(404, 409)
)
async def create_user(body: UserCreate, svc: ServicesDep, principal: PrincipalDep) -> UserCreated:
    """Create a user of an existing role; the response holds their first token, shown once."""
    _admin(principal)
    user, token = await users.create_user(
        svc.store, svc.secret, body.name, body.role, expires_in=body.expires_in
    )
    return UserCreated(user=UserPublic.of(user), token=TokenIssued.of(token))


@router.patch("/users/{name}", response_model=UserPublic, responses=error_responses(404, 409))
async def update_user(
    name: UserName, body: UserUpdate, svc: ServicesDep, principal: PrincipalDep
) -> UserPublic:
    """Disable (or enable again) a user, or give them another role: both apply at once.

    409 last_admin when that would leave no enabled user who may manage users.
    """
    _admin(principal)
    updated = await users.update_user(svc.store, name, disabled=body.disabled, role=body.role)
    return UserPublic.of(updated)


@router.get("/users/{name}/tokens", response_model=TokenList, responses=error_responses(404))
async def list_tokens(name: UserName, svc: ServicesDep, principal: PrincipalDep) -> TokenList:
    """The user's tokens: ids and validity, never the tokens themselves."""
    _admin(principal)
    found = await users.list_tokens(svc.store, name)
    return TokenList(tokens=[TokenPublic.of(t) for t in found])


@router.post(
    "/users/{name}/tokens",
    status_code=201,
    response_model=TokenIssued,
    responses=error_responses(404),
)
async def create_token(
    name: UserName, body: TokenCreate, svc: ServicesDep, principal: PrincipalDep
) -> TokenIssued:
    """Issue a token for the user, shown once in this response."""
    _admin(principal)
    issued = await users.create_token(svc.store, svc.secret, name, expires_in=body.expires_in)
    return TokenIssued.of(issued)


@router.delete(
    "/users/{name}/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
)
async def revoke_token(
    name: UserName,
    token_id: Annotated[str, Path(max_length=64)],
    svc: ServicesDep,
    principal: PrincipalDep,
) -> Response:
    """Revoke the token: it stops authenticating at once."""
    _admin(principal)
    await users.revoke_token(svc.store, token_id, name=name)
    return Response(status_code=204)


@router.get("/tokens", response_model=TokenList)
async def list_all_tokens(svc: ServicesDep, principal: PrincipalDep) -> TokenList:
    """Every user's tokens, newest first: ids and validity, never the tokens themselves."""
    _admin(principal)
    return TokenList(tokens=[TokenPublic.of(t) for t in await users.list_tokens(svc.store)])


@router.delete(
    "/tokens/{token_id}", status_code=204, response_class=Response, responses=error_responses(404)
)
async def revoke_any_token(
    token_id: Annotated[str, Path(max_length=64)], svc: ServicesDep, principal: PrincipalDep
) -> Response:
    """Revoke a token by its id alone, whoever holds it: it stops authenticating at once."""
    _admin(principal)
    await users.revoke_token(svc.store, token_id)
    return Response(status_code=204)


@router.get("/roles", response_model=RoleList)
async def list_roles(svc: ServicesDep, principal: PrincipalDep) -> RoleList:
    """Built-in and custom roles with their statements."""
    _admin(principal)
    return RoleList(roles=[RolePublic.of(r) for r in await users.list_roles(svc.store)])


@router.post("/roles", status_code=201, response_model=RolePublic, responses=error_responses(409))
async def create_role(body: RoleCreate, svc: ServicesDep, principal: PrincipalDep) -> RolePublic:
    """Define a role as statements: allowed actions ('*' wildcards), optionally per dataset."""
    _admin(principal)
    statements = [s.to_domain() for s in body.statements]
    role = await users.create_role(
        svc.store, body.name, statements, sees_all_batches=body.sees_all_batches
    )
    return RolePublic.of(role)


@router.put("/roles/{name}", response_model=RolePublic, responses=error_responses(404, 409))
async def update_role(
    name: str, body: RoleUpdate, svc: ServicesDep, principal: PrincipalDep
) -> RolePublic:
    """Replace a custom role's statements; its users hold the new ones from their next request.

    Built-in roles cannot be changed (409); nor can a role lose manage_users while its holders
    are the only admins (409 last_admin).
    """
    _admin(principal)
    statements = [s.to_domain() for s in body.statements]
    role = await users.update_role(
        svc.store, name, statements, sees_all_batches=body.sees_all_batches
    )
    return RolePublic.of(role)


@router.delete("/roles/{name}", status_code=204, responses=error_responses(404, 409))
async def delete_role(name: str, svc: ServicesDep, principal: PrincipalDep) -> Response:
    """Delete a custom role. 409 role_in_use while users hold it, 409 for a built-in role."""
    _admin(principal)
    await users.delete_role(svc.store, name)
    return Response(status_code=204)


@router.get("/me", response_model=Me)
async def me(principal: PrincipalDep) -> Me:
    """Who the token belongs to, and what their role allows."""
    return Me(name=principal.name, role=RolePublic.of(principal.grants))


async def _secret(svc: Services, principal: Principal, *, rotate: bool) -> WebhookSecret:
    return WebhookSecret(
        secret=await users.webhook_secret(svc.store, svc.secret, principal, rotate=rotate)
    )


@router.get("/me/webhook-secret", response_model=WebhookSecret)
async def get_webhook_secret(svc: ServicesDep, principal: PrincipalDep) -> WebhookSecret:
    """The secret your notify_url deliveries are signed with."""
    return await _secret(svc, principal, rotate=False)


@router.post("/me/webhook-secret", response_model=WebhookSecret)
async def rotate_webhook_secret(svc: ServicesDep, principal: PrincipalDep) -> WebhookSecret:
    """Replace your webhook secret; deliveries from now on are signed with the new one."""
    return await _secret(svc, principal, rotate=True)

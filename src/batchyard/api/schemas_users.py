"""Request and response bodies of the user, token and role endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from batchyard.domain.permissions import Role, Statement
from batchyard.service.users import IssuedToken
from batchyard.store.users import TokenInfo, UserInfo

#: Longest token lifetime accepted through the API: ten years, in seconds.
MAX_TOKEN_SECONDS = 10 * 365 * 24 * 3600


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63)
    role: str = Field(min_length=1, max_length=63)
    expires_in: int | None = Field(
        default=None, ge=1, le=MAX_TOKEN_SECONDS, description="Seconds the first token is valid"
    )


class UserUpdate(BaseModel):
    """What to change; fields left out stay as they are (at least one is needed)."""

    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    role: str | None = Field(default=None, min_length=1, max_length=63)

    @model_validator(mode="after")
    def _changes_something(self) -> UserUpdate:
        if self.disabled is None and self.role is None:
            raise ValueError("give disabled, role or both")
        return self


class UserPublic(BaseModel):
    name: str
    role: str
    disabled: bool
    created_ts: float

    @classmethod
    def of(cls, user: UserInfo) -> UserPublic:
        return cls(
            name=user.name, role=user.role, disabled=user.disabled, created_ts=user.created_ts
        )


class UserList(BaseModel):
    users: list[UserPublic]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: int | None = Field(
        default=None, ge=1, le=MAX_TOKEN_SECONDS, description="Seconds the token is valid"
    )


class TokenIssued(BaseModel):
    """The only response that ever contains the token itself."""

    token_id: str
    user: str
    token: str
    expires_ts: float | None

    @classmethod
    def of(cls, issued: IssuedToken) -> TokenIssued:
        return cls(
            token_id=issued.token_id,
            user=issued.user,
            token=issued.token,
            expires_ts=issued.expires_ts,
        )


class UserCreated(BaseModel):
    user: UserPublic
    token: TokenIssued


class TokenPublic(BaseModel):
    token_id: str
    user: str
    created_ts: float
    expires_ts: float | None
    revoked_ts: float | None

    @classmethod
    def of(cls, token: TokenInfo) -> TokenPublic:
        return cls(
            token_id=token.token_id,
            user=token.user,
            created_ts=token.created_ts,
            expires_ts=token.expires_ts,
            revoked_ts=token.revoked_ts,
        )


class TokenList(BaseModel):
    tokens: list[TokenPublic]


class StatementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actions: list[str] = Field(
        min_length=1, max_length=64, description="Actions allowed; '*' wildcards, e.g. 'get_*'"
    )
    datasets: list[str] | None = Field(
        default=None, max_length=256, description="Datasets it applies to (default: all)"
    )
    operations: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Operations its create_batch may run, e.g. ['insert', 'upsert'] "
        "('*' wildcards; default: all)",
    )

    def to_domain(self) -> Statement:
        return Statement.of(self.actions, self.datasets, self.operations)

    @classmethod
    def of(cls, statement: Statement) -> StatementBody:
        datasets = None if statement.datasets is None else list(statement.datasets)
        operations = None if statement.operations is None else list(statement.operations)
        return cls(actions=list(statement.actions), datasets=datasets, operations=operations)


class RoleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63)
    statements: list[StatementBody] = Field(min_length=1, max_length=64)
    sees_all_batches: bool = False


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statements: list[StatementBody] = Field(min_length=1, max_length=64)
    sees_all_batches: bool = False


class RolePublic(BaseModel):
    name: str
    statements: list[StatementBody]
    sees_all_batches: bool
    builtin: bool

    @classmethod
    def of(cls, role: Role) -> RolePublic:
        return cls(
            name=role.name,
            statements=[StatementBody.of(s) for s in role.statements],
            sees_all_batches=role.sees_all_batches,
            builtin=role.builtin,
        )


class RoleList(BaseModel):
    roles: list[RolePublic]


class Me(BaseModel):
    name: str
    role: RolePublic


class WebhookSecret(BaseModel):
    """Verifies deliveries: Batchyard-Signature is t=TS,v1=hex HMAC-SHA256(secret, "TS.body")."""

    secret: str

"""``batchyard users|tokens|roles``: administer accounts directly in the configured database.

These commands are for the operator who runs the service: they open the metadata database named
by BATCHYARD_DATABASE_URL (or the one in BATCHYARD_DATA_DIR) and need no token.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from batchyard.domain.errors import BatchyardError, InvalidRequest
from batchyard.domain.permissions import Action, Statement

if TYPE_CHECKING:
    from batchyard.service.users import IssuedToken
    from batchyard.store.database import MetadataStore

T = TypeVar("T")

users_app = typer.Typer(
    help="Create, list, disable users and change their role.", no_args_is_help=True
)
tokens_app = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
roles_app = typer.Typer(
    help="Define, change, list and delete roles (statements of allowed actions)."
)

DataDir = Annotated[
    Path | None,
    typer.Option(help="Data directory [env BATCHYARD_DATA_DIR; default ./batchyard-data]."),
]
Expires = Annotated[
    str | None,
    typer.Option(
        "--expires", help="Token lifetime, e.g. 3600, 90m, 12h, 30d (default: never expires)."
    ),
]
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``text`` (``3600``, ``90m``, ``12h``, ``30d``)."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 3600, 90m, 12h or 30d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _users() -> ModuleType:
    """The account use cases, imported on first use: every ``batchyard`` command (client ones
    included) loads this module, and the database stack behind it costs seconds to import."""
    from batchyard.service import users

    return users


def _run(data_dir: Path | None, work: Callable[[MetadataStore, bytes], Awaitable[T]]) -> T:
    """Open the configured store, run ``work``, and turn domain errors into a clean exit."""
    from batchyard.service.auth import load_secret
    from batchyard.settings import Settings
    from batchyard.store.database import MetadataStore

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)

    async def main() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = await MetadataStore.open(settings.resolved_database_url())
        try:
            return await work(store, load_secret(settings))
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except BatchyardError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ts))


def _print_token(token: IssuedToken) -> None:
    typer.echo(f"token id: {token.token_id}   expires: {_when(token.expires_ts)}", err=True)
    typer.echo("The token is shown only now; store it safely:", err=True)
    typer.echo(token.token)


@users_app.command("create")
def create_user(
    name: Annotated[str, typer.Argument(help="User name (a-z, 0-9, _).")],
    role: Annotated[str, typer.Option(help="admin, member, viewer or a custom role.")] = "member",
    expires: Expires = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user and print their first token (shown once, on stdout)."""
    seconds = parse_duration(expires) if expires else None
    _, token = _run(
        data_dir,
        lambda store, key: _users().create_user(store, key, name, role, expires_in=seconds),
    )
    typer.echo(f"created user {name!r} with role {role!r}", err=True)
    _print_token(token)


@users_app.command("list")
def list_users(data_dir: DataDir = None) -> None:
    """Every user, their role and whether they are disabled."""
    found = _run(data_dir, lambda store, _key: _users().list_users(store))
    typer.echo(f"{'NAME':<24} {'ROLE':<16} {'STATE':<9} CREATED")
    for user in found:
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.name:<24} {user.role:<16} {state:<9} {_when(user.created_ts)}")


@users_app.command("disable")
def disable_user(name: str, data_dir: DataDir = None) -> None:
    """Disable a user: every token of theirs stops working at once."""
    _run(data_dir, lambda store, _key: _users().update_user(store, name, disabled=True))
    typer.echo(f"disabled user {name!r}")


@users_app.command("enable")
def enable_user(name: str, data_dir: DataDir = None) -> None:
    """Enable a disabled user again."""
    _run(data_dir, lambda store, _key: _users().update_user(store, name, disabled=False))
    typer.echo(f"enabled user {name!r}")


@users_app.command("set-role")
def set_user_role(
    name: str,
    role: Annotated[str, typer.Option(help="The role to give (built-in or custom).")],
    data_dir: DataDir = None,
) -> None:
    """Give a user another role: it applies from their next request on."""
    _run(data_dir, lambda store, _key: _users().update_user(store, name, role=role))
    typer.echo(f"user {name!r} now has role {role!r}")


@tokens_app.command("create")
def create_token(name: str, expires: Expires = None, data_dir: DataDir = None) -> None:
    """Issue another token for user NAME (shown once, on stdout)."""
    seconds = parse_duration(expires) if expires else None
    token = _run(
        data_dir, lambda store, key: _users().create_token(store, key, name, expires_in=seconds)
    )
    _print_token(token)


@tokens_app.command("list")
def list_tokens(
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Token ids with their owner and validity (never the tokens themselves)."""
    found = _run(data_dir, lambda store, _key: _users().list_tokens(store, name))
    typer.echo(f"{'TOKEN ID':<36}  {'USER':<16} {'EXPIRES':<21} REVOKED")
    for t in found:
        typer.echo(
            f"{t.token_id:<36}  {t.user:<16} {_when(t.expires_ts):<21} {_when(t.revoked_ts)}"
        )


@tokens_app.command("revoke")
def revoke_token(token_id: str, data_dir: DataDir = None) -> None:
    """Revoke a token by its id (see `tokens list`): it stops working at once."""
    _run(data_dir, lambda store, _key: _users().revoke_token(store, token_id))
    typer.echo(f"revoked token {token_id}")


def _statements(allow: list[str], datasets: list[str], raw: list[str]) -> list[Statement]:
    try:
        parsed = [Statement.from_json(json.loads(text)) for text in raw]
    except (ValueError, TypeError, AttributeError) as error:
        raise typer.BadParameter(f"--statement must be a JSON object: {error}") from None
    except InvalidRequest as error:
        raise typer.BadParameter(error.message) from None
    if allow:
        try:
            parsed.append(Statement.of(allow, datasets or None))
        except InvalidRequest as error:
            raise typer.BadParameter(error.message) from None
    if not parsed:
        raise typer.BadParameter("give --allow ACTION (repeatable) or --statement JSON")
    return parsed


Allow = Annotated[
    list[str] | None,
    typer.Option(help=f"Allowed action or pattern, repeatable ({', '.join(Action)}, get_*)."),
]
Datasets = Annotated[
    list[str] | None,
    typer.Option(help="Limit the --allow statement to these datasets (patterns, repeatable)."),
]
StatementJson = Annotated[
    list[str] | None,
    typer.Option(help='A whole statement as JSON: {"actions": [...], "datasets": [...]}.'),
]
SeesAllBatches = Annotated[
    bool, typer.Option(help="Let the role see every user's batches, not just its own.")
]


@roles_app.command("create")
def create_role(
    name: str,
    allow: Allow = None,
    dataset: Datasets = None,
    statement: StatementJson = None,
    sees_all_batches: SeesAllBatches = False,
    data_dir: DataDir = None,
) -> None:
    """Define a custom role from statements of allowed actions."""
    parsed = _statements(allow or [], dataset or [], statement or [])
    _save_role(_users().create_role, name, parsed, sees_all_batches, data_dir)
    typer.echo(f"created role {name!r}")


@roles_app.command("update")
def update_role(
    name: str,
    allow: Allow = None,
    dataset: Datasets = None,
    statement: StatementJson = None,
    sees_all_batches: SeesAllBatches = False,
    data_dir: DataDir = None,
) -> None:
    """Replace a custom role's statements (its users hold the new ones at once)."""
    parsed = _statements(allow or [], dataset or [], statement or [])
    _save_role(_users().update_role, name, parsed, sees_all_batches, data_dir)
    typer.echo(f"updated role {name!r}")


def _save_role(
    save: Callable[..., Awaitable[object]],
    name: str,
    statements: list[Statement],
    sees_all_batches: bool,
    data_dir: Path | None,
) -> None:
    """Create or replace a role (``save`` is the service function) in the configured store."""
    _run(
        data_dir,
        lambda store, _key: save(store, name, statements, sees_all_batches=sees_all_batches),
    )


@roles_app.command("delete")
def delete_role(name: str, data_dir: DataDir = None) -> None:
    """Delete a custom role that no user holds."""
    _run(data_dir, lambda store, _key: _users().delete_role(store, name))
    typer.echo(f"deleted role {name!r}")


@roles_app.command("list")
def list_roles(data_dir: DataDir = None) -> None:
    """Built-in and custom roles with their statements."""
    for role in _run(data_dir, lambda store, _key: _users().list_roles(store)):
        kind = "built-in" if role.builtin else "custom"
        scope = ", sees all batches" if role.sees_all_batches else ""
        typer.echo(f"{role.name} ({kind}{scope})")
        for s in role.statements:
            where = "all datasets" if s.datasets is None else ", ".join(s.datasets)
            typer.echo(f"    allow {', '.join(s.actions)} on {where}")
